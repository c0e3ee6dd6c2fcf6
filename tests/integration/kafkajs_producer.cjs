// A kafkajs 2.2.4 producer (npm; scripts/setup-node installs it into node_modules/) for
// tests/integration/kafka_clients_test.cpp. Sends every line of VALUES_FILE, in order, each
// in a send() of its own (one RecordBatch each) or PER_SEND lines to a send(), then
// disconnects. Exits 0 only when every
// send() was acknowledged without error. Prints, last, the API versions kafkajs sent:
// `versions {"ApiVersions":[2],"Metadata":[6],...}`.
//   node kafkajs_producer.cjs PORT ACKS none|gzip plain|idempotent VALUES_FILE [PER_SEND]
//   node kafkajs_producer.cjs --version     (kafkajs's version: is it installed?)
'use strict'
if (process.argv[2] === '--version') {
  console.log(require('kafkajs/package.json').version)
  process.exit(0)
}
const fs = require('fs')
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

const [port, acks, codec, mode, valuesFile, perSendArg] = process.argv.slice(2)
const perSend = perSendArg === undefined ? 1 : Number(perSendArg)
const idempotent = mode === 'idempotent'
const compression = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }[codec]
if (compression === undefined || !valuesFile || !(perSend >= 1)) {
  console.error('usage: kafkajs_producer.cjs PORT ACKS none|gzip plain|idempotent VALUES_FILE [PER_SEND]')
  process.exit(2)
}
const values = fs.readFileSync(valuesFile, 'utf8').split('\n').filter((l) => l.length > 0)

// kafkajs logs every request it sends at debug level as "Request Produce(key: 0, version: 7)":
// collect the versions; print warnings and errors as they come.
const versions = {}
const logCreator = () => ({ namespace, level, log }) => {
  const m = /^Request (\w+)\(key: \d+, version: (\d+)\)/.exec(log.message)
  if (m) {
    const seen = (versions[m[1]] = versions[m[1]] || [])
    if (!seen.includes(Number(m[2]))) seen.push(Number(m[2]))
  } else if (level <= logLevel.WARN) {
    console.error(namespace, JSON.stringify(log))
  }
}

async function main() {
  const kafka = new Kafka({
    clientId: 'sluice-kafkajs-test',
    brokers: ['127.0.0.1:' + port],
    logLevel: logLevel.DEBUG,
    logCreator,
    // No retries: a retried send would store nothing twice (dedup), but the counters the
    // test compares would show it; an error must fail the run instead.
    // (The idempotent producer refuses to run without retries; its retries are caught by
    // the sequence check and would show in kafka.duplicate_sequences.)
    retry: { retries: idempotent ? 5 : 0 },
  })
  // The idempotent producer asks InitProducerId for an id and stamps sequences; kafkajs
  // insists on one request in flight for it.
  const producer = kafka.producer(idempotent ? { idempotent: true, maxInFlightRequests: 1 } : {})
  await producer.connect()
  for (let i = 0; i < values.length; i += perSend) {
    const answers = await producer.send({
      topic: 'events-topic',
      acks: Number(acks),
      compression,
      messages: values.slice(i, i + perSend).map((value) => ({ value })),
    })
    for (const a of answers)
      if (a.errorCode !== 0) throw new Error('partition answered error ' + JSON.stringify(a))
  }
  await producer.disconnect()
  console.log('ok', values.length)
  console.log('versions ' + JSON.stringify(versions))
}

main().catch((e) => {
  console.error('kafkajs producer failed:', e)
  process.exit(1)
})
