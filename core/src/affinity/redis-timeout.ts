/** Default budget of one Redis call for affinity (PassengerAffinityRedisTimeout), ms. */
export const DEFAULT_REDIS_TIMEOUT_MS = 50;
