using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.ServerServer;

/// <summary>Spec (server-server): publishing keys (<c>/_matrix/key/v2/server</c>) and the notary (<c>/_matrix/key/v2/query</c>).</summary>
public sealed class ServerKeyEndpoints(ServerKeyService keys, HomeserverConfig config, Ed25519KeyPair ownKey, JsonBody json) : IEndpoints
{
    public const int MaxQueriedServers = 100;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/_matrix/key/v2/server", OwnKeysAsync);
        app.MapGet("/_matrix/key/v2/server/{keyId}", OwnKeysAsync);
        app.MapGet("/_matrix/key/v2/query/{serverName}", QueryOneAsync);
        // The key ID segment of older specs is ignored, as Synapse does: all the server's keys are returned.
        app.MapGet("/_matrix/key/v2/query/{serverName}/{keyId}", QueryOneAsync);
        app.MapPost("/_matrix/key/v2/query", QueryManyAsync);
    }

    private Task OwnKeysAsync(HttpContext context) => context.WriteJsonAsync(keys.OwnKeys());

    private async Task QueryOneAsync(HttpContext context)
    {
        var serverName = context.Route("serverName");
        if (!ServerName.TryParse(serverName, out _))
            throw MatrixException.InvalidParam("Invalid server name.");
        var minimum = long.TryParse(context.Query("minimum_valid_until_ts"), out var ts) ? ts : (long?)null;
        var responses = await keys.KeyResponsesAsync(serverName, [new KeyCriterion(null, minimum)], context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["server_keys"] = new JsonArray(responses.Select(r => (JsonNode)Notarised(r)).ToArray()) });
    }

    private async Task QueryManyAsync(HttpContext context)
    {
        var body = await json.ReadObjectAsync(context);
        var servers = body.OptionalObject("server_keys") ?? throw MatrixException.MissingParam("server_keys");
        var responses = new JsonArray();
        foreach (var server in servers.EnumerateObject().Take(MaxQueriedServers))
        {
            if (!ServerName.TryParse(server.Name, out _) || server.Value.ValueKind != System.Text.Json.JsonValueKind.Object)
                continue;
            var criteria = server.Value.EnumerateObject().Select(key => new KeyCriterion(key.Name,
                key.Value.ValueKind == System.Text.Json.JsonValueKind.Object ? key.Value.OptionalInteger("minimum_valid_until_ts") : null)).ToList();
            if (criteria.Count == 0)
                criteria.Add(new KeyCriterion(null, null));
            foreach (var response in await keys.KeyResponsesAsync(server.Name, criteria, context.RequestAborted))
                responses.Add(Notarised(response));
        }
        await context.WriteJsonAsync(new JsonObject { ["server_keys"] = responses });
    }

    /// <summary>The origin's signed response with this server's signature added, as a notary vouches for it.</summary>
    private JsonObject Notarised(JsonObject response)
    {
        if (response["server_name"]?.GetValue<string>() != config.ServerName)
            JsonSigning.Sign(response, config.ServerName, ownKey);
        return response;
    }
}
