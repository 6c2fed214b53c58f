/** Ferry's version, shown in X-Powered-By, status and logs. */
export const FERRY_VERSION = "0.1.0";
