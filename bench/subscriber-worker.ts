/** Entry of the worker thread that runs a fixed-rate scenario's subscribers (bench/scenario.ts). */
import { workerData } from 'node:worker_threads';
import { subscriberWorker, type GroupSpec } from './scenario.js';

void subscriberWorker((workerData as { benchSubscribers: GroupSpec }).benchSubscribers);
