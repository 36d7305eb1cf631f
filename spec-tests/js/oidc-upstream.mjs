// An upstream OpenID Connect provider for the single sign-on tests: npm oidc-provider (a certified implementation)
// with its development sign-in pages, on loopback.
//
//   node oidc-upstream.mjs '<json>'   json: { port, clients: [oidc-provider client metadata], accounts: { id: claims } }
//
// Prints "LISTENING <issuer>" once it serves. The tests change its behaviour with POST /test/tamper?mode=...:
// the next ID tokens the token endpoint returns are re-made with a wrong audience, issuer, nonce or expiry, or
// signed by a key the provider never published ("none" restores honest tokens).
import { createServer } from "node:http";
import Provider from "oidc-provider";
import * as jose from "jose";

const options = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${options.port}`;

const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: "upstream-1", alg: "RS256", use: "sig" };
const { privateKey: foreignKey } = await jose.generateKeyPair("RS256");

const accounts = options.accounts ?? {};
const provider = new Provider(issuer, {
    clients: options.clients,
    jwks: { keys: [signingJwk] },
    scopes: ["openid", "offline_access", "profile", "email", "groups"],
    claims: {
        openid: ["sub"],
        profile: ["name", "preferred_username"],
        email: ["email", "email_verified"],
        groups: ["groups"],
    },
    // Claims the scopes allow go into the ID token as well as userinfo, as Keycloak and Entra ID do by default.
    conformIdTokenClaims: options.conformIdTokenClaims ?? false,
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
        if (!Object.hasOwn(accounts, id)) return undefined;
        return { accountId: id, claims: () => ({ sub: id, ...accounts[id] }) };
    },
    // oidc-provider's defaults make the sign-in remembered; each test starts from a fresh browser anyway.
    ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: 600, AuthorizationCode: 60, IdToken: 600 },
});
provider.proxy = false;

let tamper = "none";
provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== "/token" || tamper === "none" || typeof ctx.body?.id_token !== "string") return;
    const claims = jose.decodeJwt(ctx.body.id_token);
    const now = Math.floor(Date.now() / 1000);
    let key = privateKey;
    switch (tamper) {
        case "audience": claims.aud = "someone-else"; break;
        case "issuer": claims.iss = "http://127.0.0.1:1/not-the-issuer"; break;
        case "nonce": claims.nonce = "not-the-nonce"; break;
        case "expired": claims.iat = now - 7200; claims.exp = now - 3600; break;
        case "signature": key = foreignKey; break;
        default: throw new Error(`unknown tamper mode ${tamper}`);
    }
    ctx.body = { ...ctx.body, id_token: await new jose.SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "upstream-1" }).sign(key) };
});

const handler = provider.callback();
const server = createServer((req, res) => {
    const url = new URL(req.url, issuer);
    if (req.method === "POST" && url.pathname === "/test/tamper") {
        tamper = url.searchParams.get("mode") ?? "none";
        res.writeHead(204).end();
        return;
    }
    handler(req, res);
});
server.listen(options.port, "127.0.0.1", () => console.log(`LISTENING ${issuer}`));
