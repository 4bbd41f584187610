// A thread for supervised-thread.test.ts that speaks the supervisor's protocol. Each start
// takes the next generation number from a counter shared by all its threads; workerData says
// which generations fail to start or never get ready. 'crash' makes it die of an uncaught
// error; 'stop' makes it finish after stopDelayMs.
import { parentPort, threadId, workerData } from 'node:worker_threads';

const generation = Atomics.add(new Int32Array(workerData.counter), 0, 1);
if ((workerData.failStarts ?? []).includes(generation)) {
  parentPort.postMessage({ type: 'failed', error: `generation ${generation} told to fail` });
  parentPort.close();
} else if ((workerData.hangStarts ?? []).includes(generation)) {
  setInterval(() => {}, 1000); // alive, never ready
} else {
  parentPort.postMessage({ type: 'ready' });
  parentPort.postMessage({ type: 'hello', threadId, generation });
  parentPort.on('message', (message) => {
    if (message.type === 'crash') throw new Error('crashed on purpose');
    if (message.type === 'stop') {
      setTimeout(() => {
        parentPort.postMessage({ type: 'stopped', threadId });
        parentPort.close();
      }, workerData.stopDelayMs ?? 0);
    }
  });
}
