// b24-token-rotation/consumer: read the Bitrix24 access token the refresher keeps fresh, and call
// the portal's REST API with it. No Pulumi in here; import it from any Node.js service.
//
//   import { createB24Client } from "b24-token-rotation/consumer";
//   const b24 = createB24Client({ projectId: "my-project", portalDomain: "example.bitrix24.com" });
//   const { result } = await b24.call("crm.deal.get", { id: 42 });
export { createB24Client, consumerDefaults, resolveClientEndpoint, type B24Client, type B24ClientEvent, type B24ClientOptions } from "./client";
export { AccessTokenError, Bitrix24AuthError, Bitrix24Error, Bitrix24RateLimitError, Bitrix24TransportError, type AccessTokenErrorCode } from "./errors";
export { Pacer, type PacerOptions } from "./pacer";
export type { Bitrix24Response } from "./rest-answer";
