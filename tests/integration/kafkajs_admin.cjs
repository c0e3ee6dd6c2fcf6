// kafkajs 2.2.4's admin client against sluiced's consume side (kafka_consume_test.cpp):
// describeConfigs of the topics named on the command line, then fetchTopicOffsets of the
// first. Prints one JSON line: [[name, errorCode, {config: value}]...] and the offsets.
// Usage: node kafkajs_admin.cjs HOST:PORT TOPIC...
const { Kafka, ConfigResourceTypes, logLevel } = require('kafkajs');

(async () => {
  const [broker, ...topics] = process.argv.slice(2);
  const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
  });
  const configs = described.resources.map((r) => [
    r.resourceName, r.errorCode,
    Object.fromEntries(r.configEntries.map((e) => [e.configName, e.configValue])),
  ]);
  const offsets = await admin.fetchTopicOffsets(topics[0]);
  await admin.disconnect();
  console.log(JSON.stringify({ configs, offsets }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
