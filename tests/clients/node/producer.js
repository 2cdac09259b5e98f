// A producer that knows trainlog only by its documented job names: celery-node from npm.
// Usage: node producer.js BROKER_URL JOB_NAME ARGS_JSON QUEUE TIMEOUT_MS
// Prints one JSON line: {"status": "SUCCESS", "result": ...} or {"status": ..., "error": {...}}.
"use strict";
const celery = require("celery-node");

async function main() {
  const [broker, name, argsJson, queue, timeoutMs] = process.argv.slice(2);
  const client = celery.createClient(broker, broker, queue);
  const result = client.createTask(name).applyAsync(JSON.parse(argsJson), {});
  let outcome;
  try {
    outcome = { status: "SUCCESS", taskId: result.taskId, result: await result.get(Number(timeoutMs)) };
  } catch (error) {
    outcome = { status: error.message, taskId: result.taskId, error: { ...error } };
  }
  process.stdout.write(JSON.stringify(outcome) + "\n");
  await client.disconnect();
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
});
