using System.Text.Json.Nodes;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

public sealed class OAuthClientStore
{
    public Task InsertAsync(DbSession s, string clientId, JsonObject metadata, long now) =>
        s.ExecuteAsync("INSERT INTO oauth_clients (client_id, metadata_json, created_ts) VALUES (@clientId, @metadataJson, @now)",
            new { clientId, metadataJson = metadata.ToJsonString(), now });

    public async Task<OAuthClient?> GetAsync(DbSession s, string clientId) =>
        await s.QuerySingleOrDefaultAsync<string?>("SELECT metadata_json FROM oauth_clients WHERE client_id = @clientId", new { clientId }) is { } json
            ? new OAuthClient(clientId, JsonNode.Parse(json)!.AsObject())
            : null;

    /// <summary>Removes the clients registered before <paramref name="before"/> that have no authorisation request or session.</summary>
    public Task<int> DeleteUnusedAsync(DbSession s, long before) =>
        s.ExecuteAsync("""
            DELETE FROM oauth_clients WHERE created_ts < @before
              AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.client_id)
              AND NOT EXISTS (SELECT 1 FROM oauth_sessions o WHERE o.client_id = oauth_clients.client_id)
            """, new { before });
}
