// Two kafkajs 2.2.4 consumers in one group (npm; scripts/setup-node) for
// tests/integration/kafka_groups_test.cpp: sluiced is their group coordinator.
//   node kafkajs_group.cjs PORT GROUP STORED VALUES_A VALUES_B
// 1. Consumers A and B subscribe to events-topic (from the beginning) and run until they
//    have read the STORED records already in the store and the group is stable with one
//    partition each.
// 2. A kafkajs producer (acks -1) sends VALUES_A; both consume them.
// 3. B disconnects (LeaveGroup); once A holds every partition, VALUES_B is sent and A
//    consumes all of it.
// Each consumer commits every record's offset (awaited) before it prints the record, so a
// record printed was committed by its owner: after a rebalance the next owner resumes after
// it. Output, one line each:
//   rec CONSUMER PHASE PARTITION OFFSET VALUE
//   assign CONSUMER PHASE [partitions]   (each GROUP_JOIN: the partitions it was given)
//   versions {"JoinGroup":[5],...}
// Exits 0 when every phase finished within its deadline.
'use strict'
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const [port, group, storedArg, valuesA, valuesB] = process.argv.slice(2)
if (!valuesB) {
  console.error('usage: kafkajs_group.cjs PORT GROUP STORED VALUES_A VALUES_B')
  process.exit(2)
}
const stored = Number(storedArg)
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.length > 0)

const versions = {}
const logCreator = () => ({ namespace, level, log }) => {
  const m = /^Request (\w+)\(key: \d+, version: (\d+)\)/.exec(log.message)
  if (m) {
    const seen = (versions[m[1]] = versions[m[1]] || [])
    if (!seen.includes(Number(m[2]))) seen.push(Number(m[2]))
  } else if (level <= logLevel.WARN && !/rebalanc/i.test(JSON.stringify(log))) {
    console.error(namespace, JSON.stringify(log))
  }
}

const kafka = new Kafka({
  clientId: 'sluice-kafkajs-group',
  brokers: ['127.0.0.1:' + port],
  logLevel: logLevel.DEBUG,
  logCreator,
})

let phase = 1
let seen = 0
const assigned = { A: [], B: [] }

function consumer(name) {
  const c = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 })
  c.on(c.events.GROUP_JOIN, (e) => {
    const parts = (e.payload.memberAssignment['events-topic'] || []).slice().sort()
    assigned[name] = parts
    console.log(`assign ${name} ${phase} ${JSON.stringify(parts)}`)
  })
  return c
}

async function start(name, c) {
  await c.connect()
  await c.subscribe({ topic: 'events-topic', fromBeginning: true })
  await c.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      const next = (BigInt(message.offset) + 1n).toString()
      await c.commitOffsets([{ topic, partition, offset: next }])
      seen += 1
      console.log(`rec ${name} ${phase} ${partition} ${message.offset} ${message.value.toString()}`)
    },
  })
}

async function until(what, cond, seconds) {
  const deadline = Date.now() + seconds * 1000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function send(producer, values) {
  for (const value of values) {
    await producer.send({ topic: 'events-topic', acks: -1, messages: [{ value }] })
  }
}

async function main() {
  const a = consumer('A')
  const b = consumer('B')
  await start('A', a)
  await start('B', b)
  const split = () => assigned.A.length === 1 && assigned.B.length === 1 && assigned.A[0] !== assigned.B[0]
  await until('phase 1', () => seen >= stored && split(), 120)
  const producer = kafka.producer()
  await producer.connect()
  const first = lines(valuesA)
  phase = 2
  await send(producer, first)
  await until('phase 2', () => seen >= stored + first.length, 120)
  await b.disconnect()
  await until('A to hold every partition', () => assigned.A.length === 2, 120)
  const second = lines(valuesB)
  phase = 3
  await send(producer, second)
  await until('phase 3', () => seen >= stored + first.length + second.length, 120)
  await producer.disconnect()
  await a.disconnect()
  console.log('versions ' + JSON.stringify(versions))
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error('kafkajs_group: ' + e.message)
    console.log('versions ' + JSON.stringify(versions))
    process.exit(1)
  },
)
