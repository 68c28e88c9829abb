export { Announcer } from './announcer.ts';
export { SqsBus, type SqsBusOptions } from './aws/sqs-bus.ts';
export { dispatch } from './dispatch.ts';
export { BusError } from './errors.ts';
export { type FaultRates, seededRandom, withFaults } from './faults.ts';
export * from './port.ts';
export { RedisStreamsBus, type RedisStreamsBusOptions } from './redis/streams-bus.ts';
