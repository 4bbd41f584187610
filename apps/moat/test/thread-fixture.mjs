// A thread for supervised-thread.test.ts that speaks the supervisor's protocol: ready (or
// failed), 'crash' makes it die of an uncaught error, 'stop' makes it finish after a delay.
import { parentPort, threadId, workerData } from 'node:worker_threads';

if (workerData.fail) {
  parentPort.postMessage({ type: 'failed', error: 'cannot start: told to fail' });
  parentPort.close();
} else {
  parentPort.postMessage({ type: 'ready' });
  parentPort.postMessage({ type: 'hello', threadId });
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
