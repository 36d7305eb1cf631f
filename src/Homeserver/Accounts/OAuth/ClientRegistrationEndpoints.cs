using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Spec: "Dynamic client registration flow" (RFC 7591): public clients register themselves and get a client ID. Web
/// clients register at every visit to their sign-in page, so registration is rate limited per address (as account
/// registration is) and clients that never signed anyone in are removed after a day (<see cref="OAuthCleanup"/>).
/// </summary>
public sealed class ClientRegistrationEndpoints(
    Database db, OAuthClientStore clients, JsonBody json, RateLimiter limiter, Config.HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapOAuth("POST", OAuthPaths.Register, RegisterAsync);

    private async Task RegisterAsync(HttpContext context)
    {
        limiter.Check("oauth-register", context.ClientIp(), config.RateLimits.Registration);
        var metadata = ClientRegistration.Validate(await json.ReadObjectAsync(context));
        var clientId = Secrets.NewSessionId();
        await db.WriteAsync(s => clients.InsertAsync(s, clientId, metadata, clock.GetUtcNow().ToUnixTimeMilliseconds()), context.RequestAborted);
        var answer = metadata.DeepClone().AsObject();
        answer.Insert(0, "client_id", clientId);
        await context.WriteJsonAsync(answer, 201);
    }
}
