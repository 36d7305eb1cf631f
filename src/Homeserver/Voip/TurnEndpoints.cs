using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Voip;

/// <summary>
/// Spec: Voice over IP, <c>GET /voip/turnServer</c>. With a shared secret, credentials follow the TURN REST API scheme
/// coturn checks (username <c>expiry:user</c>, password base64 HMAC-SHA1 of it); without TURN configured, an empty
/// object, as Synapse answers.
/// </summary>
public sealed class TurnEndpoints(Authenticator authenticator, HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapV3("GET", "voip/turnServer", TurnServerAsync);

    private async Task TurnServerAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var voip = config.Voip;
        if (voip.TurnUris.Count == 0)
        {
            await context.WriteJsonAsync(new JsonObject());
            return;
        }
        string username, password;
        if (voip.TurnSharedSecret is { } secret)
        {
            var expiry = clock.GetUtcNow().ToUnixTimeSeconds() + voip.TurnUserLifetimeMs / 1000;
            username = $"{expiry}:{requester.UserId.Value}";
            password = Convert.ToBase64String(HMACSHA1.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(username)));
        }
        else
            (username, password) = (voip.TurnUsername!, voip.TurnPassword!);
        await context.WriteJsonAsync(new JsonObject
        {
            ["username"] = username,
            ["password"] = password,
            ["uris"] = new JsonArray(voip.TurnUris.Select(u => (JsonNode)u).ToArray()),
            ["ttl"] = voip.TurnUserLifetimeMs / 1000,
        });
    }
}
