export { type AdminAppOptions, BODY_LIMIT, buildAdminApp, type RouteAuth } from './app.js';
export { type AdminToken, type AuthResult, type Principal, type Scope, tokenChecker } from './auth.js';
export { MetricsCollector } from './metrics.js';
