// Runs each SQL statement given as an argument in an in-memory DuckDB and prints one
// JSON line per statement: {"columns":[...],"types":[...],"rows":[[...], ...]}, values
// as DuckDB's JSON forms (big integers as strings). Exits 1 with the error on stderr.
// DuckDB comes from npm (@duckdb/node-api): scripts/setup-duckdb installs it.
const { DuckDBInstance } = require('@duckdb/node-api');

(async () => {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  for (const sql of process.argv.slice(2)) {
    const r = await con.runAndReadAll(sql);
    console.log(JSON.stringify({
      columns: r.columnNames(),
      types: r.columnTypes().map(String),
      rows: r.getRowsJson(),
    }));
  }
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
