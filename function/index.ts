// Entry points of the deployed bundle. Module scope only registers handlers: clients are
// created on first use, so a cold start stays cheap.
import * as functions from "@google-cloud/functions-framework";
import { createOAuthCallbackHandler } from "./oauth-callback";
import { createRefreshTokensHandler } from "./refresh-handler";

functions.cloudEvent("refreshTokens", createRefreshTokensHandler());
functions.http("oauthCallback", createOAuthCallbackHandler());
