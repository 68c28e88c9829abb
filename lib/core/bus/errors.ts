export class BusError extends Error {
  override name = 'BusError';
}
