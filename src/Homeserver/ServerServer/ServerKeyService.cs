using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// This server's published keys, and other servers' keys: fetched from their key server on demand (or, when it cannot
/// be reached, from the configured notaries, whose signature on the answer is checked too), checked (self-signed,
/// right server name), and cached in the database with the response itself for the notary endpoint.
/// </summary>
public sealed class ServerKeyService(Database db, FederationClient client, HomeserverConfig config, Ed25519KeyPair ownKey, TimeProvider clock,
    ILogger<ServerKeyService> logger)
{
    /// <summary>How long others may trust our key listing before asking again.</summary>
    public static readonly TimeSpan OwnKeysValidity = TimeSpan.FromDays(1);

    private sealed record ResponseRow(string KeyId, string ResponseJson, long ValidUntilTs);

    private sealed record KeyRow(string KeyId, string PublicKey, long? ValidUntilTs, long? ExpiredTs, long FetchedTs);

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>GET /_matrix/key/v2/server: our current key, signed by itself.</summary>
    public JsonObject OwnKeys()
    {
        var response = new JsonObject
        {
            ["server_name"] = config.ServerName,
            ["valid_until_ts"] = Now + (long)OwnKeysValidity.TotalMilliseconds,
            ["verify_keys"] = new JsonObject { [ownKey.KeyId] = new JsonObject { ["key"] = ownKey.PublicKeyBase64 } },
            ["old_verify_keys"] = new JsonObject(config.OldSigningKeys.Select(old => KeyValuePair.Create(old.Key,
                (JsonNode?)new JsonObject { ["key"] = old.Value.Key, ["expired_ts"] = old.Value.ExpiredTs }))),
        };
        JsonSigning.Sign(response, config.ServerName, ownKey);
        return response;
    }

    /// <summary>
    /// What the notary serves for a server: the latest response of each key the criteria name (of every key, for a
    /// criterion without a key ID), fetched first when one is missing or not valid until the criterion's minimum (the
    /// current time when it has none). Responses stay cached per key, so one without a key does not erase the key's
    /// earlier response, and a server that cannot be reached is answered for from the cache, however old.
    /// </summary>
    public async Task<List<JsonObject>> KeyResponsesAsync(string serverName, IReadOnlyCollection<KeyCriterion> criteria, CancellationToken ct)
    {
        if (serverName == config.ServerName)
            return [OwnKeys()];
        var cached = await CachedResponsesAsync(serverName, ct);
        var now = Now;
        bool Satisfied(KeyCriterion c) => cached.Any(r => c.Matches(r.KeyId) && r.ValidUntilTs >= (c.MinimumValidUntilTs ?? now));
        if (!criteria.All(Satisfied) && await FetchAsync(serverName, ct))
            cached = await CachedResponsesAsync(serverName, ct);
        return cached.Where(r => criteria.Any(c => c.Matches(r.KeyId))).Select(r => r.ResponseJson).Distinct()
            .Select(json => JsonNode.Parse(json)!.AsObject()).ToList();
    }

    private Task<List<ResponseRow>> CachedResponsesAsync(string serverName, CancellationToken ct) =>
        db.ReadAsync(async s => (await s.QueryAsync<ResponseRow>(
            "SELECT key_id, response_json, valid_until_ts FROM server_key_responses WHERE server_name = @serverName ORDER BY fetched_ts DESC",
            new { serverName })).ToList(), ct);

    /// <summary>A verify key by ID with when it was fetched; fetches the server's keys when it is unknown.</summary>
    public async Task<(VerifyKey Key, long FetchedAtTs)?> FindKeyAsync(string serverName, string keyId, CancellationToken ct)
    {
        if (serverName == config.ServerName)
            return keyId == ownKey.KeyId ? (new VerifyKey(keyId, ownKey.PublicKey, Now + (long)OwnKeysValidity.TotalMilliseconds, null), Now)
                : config.OldSigningKeys.TryGetValue(keyId, out var old) && UnpaddedBase64.TryDecode(old.Key, out var oldKey)
                    ? (new VerifyKey(keyId, oldKey, null, old.ExpiredTs), Now)
                    : null;
        var known = await LoadKeyAsync(serverName, keyId, ct);
        if (known is { ExpiredTs: not null } || (known is { } current && current.ValidUntilTs >= Now))
            return ToKey(known!);
        await FetchAsync(serverName, ct);
        return await LoadKeyAsync(serverName, keyId, ct) is { } fetched ? ToKey(fetched) : known is null ? null : ToKey(known);
    }

    /// <summary>
    /// Loads every key an event's signatures by its required signers (or by <paramref name="signers"/>) name, so the
    /// synchronous signature check can run.
    /// </summary>
    public async Task<Func<string, string, (VerifyKey Key, long FetchedAtTs)?>> KeysForAsync(Pdu pdu, CancellationToken ct,
        IEnumerable<string>? signers = null)
    {
        var found = new Dictionary<(string, string), (VerifyKey, long)>();
        // Redaction keeps the signatures as they are: their key IDs are read from the event, not from a redacted copy.
        foreach (var server in signers ?? EventSigning.RequiredSigners(pdu))
            foreach (var keyId in JsonSigning.SigningKeyIds(pdu.Json, server))
                if (await FindKeyAsync(server, keyId, ct) is { } key)
                    found[(server, keyId)] = key;
        return (server, keyId) => found.TryGetValue((server, keyId), out var key) ? key : null;
    }

    private static (VerifyKey, long) ToKey(KeyRow row) =>
        (new VerifyKey(row.KeyId, UnpaddedBase64.TryDecode(row.PublicKey, out var bytes) ? bytes : [], row.ValidUntilTs, row.ExpiredTs), row.FetchedTs);

    private Task<KeyRow?> LoadKeyAsync(string serverName, string keyId, CancellationToken ct) => db.ReadAsync(s => s.QuerySingleOrDefaultAsync<KeyRow>(
        "SELECT key_id, public_key, valid_until_ts, expired_ts, fetched_ts FROM server_keys WHERE server_name = @serverName AND key_id = @keyId",
        new { serverName, keyId }), ct);

    /// <summary>
    /// Fetches <c>/_matrix/key/v2/server</c> from the server itself, else asks the configured notaries, and stores the
    /// first valid answer; false when none came.
    /// </summary>
    private async Task<bool> FetchAsync(string serverName, CancellationToken ct)
    {
        if (await FetchDirectAsync(serverName, ct))
            return true;
        foreach (var notary in config.Federation.TrustedKeyServers.Where(n => n.ServerName != serverName))
            if (await FetchThroughNotaryAsync(serverName, notary, ct))
                return true;
        return false;
    }

    private async Task<bool> FetchDirectAsync(string serverName, CancellationToken ct)
    {
        try
        {
            var response = await client.GetUnsignedAsync(serverName, "/_matrix/key/v2/server", ct) as JsonObject
                ?? throw new FederationException(0, null, "not a JSON object");
            if (Valid(response, serverName, serverName) is not { } keys)
                return false;
            await StoreAsync(serverName, response, keys, ct);
            return true;
        }
        catch (FederationException e)
        {
            logger.LogInformation("Fetching the keys of {Server} failed: {Reason}", serverName, e.Message);
            return false;
        }
    }

    /// <summary>
    /// <c>POST /_matrix/key/v2/query</c> to a notary: each response for the server counts when the server signed it (as
    /// ever) and so did the notary, with a key from the config or fetched from the notary itself.
    /// </summary>
    private async Task<bool> FetchThroughNotaryAsync(string serverName, TrustedKeyServerConfig notary, CancellationToken ct)
    {
        try
        {
            var query = new JsonObject { ["server_keys"] = new JsonObject { [serverName] = new JsonObject() } };
            var answer = await client.SendAsync(HttpMethod.Post, notary.ServerName, "/_matrix/key/v2/query", query, ct) as JsonObject;
            var stored = false;
            foreach (var response in (answer?["server_keys"] as JsonArray ?? []).OfType<JsonObject>())
                if (Valid(response, serverName, notary.ServerName) is { } keys && await SignedByNotaryAsync(response, notary, ct))
                {
                    await StoreAsync(serverName, response, keys, ct);
                    stored = true;
                }
            if (!stored)
                logger.LogInformation("The notary {Notary} had no valid keys of {Server}", notary.ServerName, serverName);
            return stored;
        }
        catch (FederationException e)
        {
            logger.LogInformation("Asking the notary {Notary} for the keys of {Server} failed: {Reason}", notary.ServerName, serverName, e.Message);
            return false;
        }
    }

    /// <summary>The notary's own key comes from the config, or from the notary itself (never from another notary).</summary>
    private async Task<bool> SignedByNotaryAsync(JsonObject response, TrustedKeyServerConfig notary, CancellationToken ct)
    {
        foreach (var keyId in JsonSigning.SigningKeyIds(response, notary.ServerName))
        {
            byte[]? publicKey;
            if (notary.VerifyKeys is { } configured)
                publicKey = configured.TryGetValue(keyId, out var text) && UnpaddedBase64.TryDecode(text, out var bytes) ? bytes : null;
            else
            {
                var known = await LoadKeyAsync(notary.ServerName, keyId, ct);
                if (known is null || known.ValidUntilTs < Now)
                {
                    await FetchDirectAsync(notary.ServerName, ct);
                    known = await LoadKeyAsync(notary.ServerName, keyId, ct);
                }
                publicKey = known is { ExpiredTs: null } && UnpaddedBase64.TryDecode(known.PublicKey, out var fetched) ? fetched : null;
            }
            if (publicKey is not null && JsonSigning.Verify(response, notary.ServerName, keyId, publicKey))
                return true;
        }
        return false;
    }

    /// <summary>The parsed keys when the response is a valid, self-signed listing of the server's keys.</summary>
    private ServerKeys? Valid(JsonObject response, string serverName, string from)
    {
        if (ServerKeys.TryParse(response, out var keys, out var error) && keys.ServerName == serverName)
            return keys;
        logger.LogWarning("Invalid key response for {Server} from {From}: {Error}", serverName, from, keys?.ServerName != serverName ? "wrong server_name" : error);
        return null;
    }

    private async Task StoreAsync(string serverName, JsonObject response, ServerKeys keys, CancellationToken ct)
    {
        var now = Now;
        var json = CanonicalJson.EncodeToString(response);
        await db.WriteAsync(async s =>
        {
            foreach (var key in keys.Keys.Values)
            {
                await s.ExecuteAsync("""
                    INSERT INTO server_keys (server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts)
                    VALUES (@serverName, @KeyId, @publicKey, @ValidUntilTs, @ExpiredTs, @now)
                    ON CONFLICT (server_name, key_id) DO UPDATE SET public_key = excluded.public_key,
                        valid_until_ts = excluded.valid_until_ts, expired_ts = excluded.expired_ts, fetched_ts = excluded.fetched_ts
                    """, new { serverName, key.KeyId, publicKey = UnpaddedBase64.Encode(key.PublicKey), key.ValidUntilTs, key.ExpiredTs, now });
                await s.ExecuteAsync("""
                    INSERT INTO server_key_responses (server_name, key_id, response_json, valid_until_ts, fetched_ts)
                    VALUES (@serverName, @KeyId, @json, @validUntil, @now)
                    ON CONFLICT (server_name, key_id) DO UPDATE SET response_json = excluded.response_json,
                        valid_until_ts = excluded.valid_until_ts, fetched_ts = excluded.fetched_ts
                    """, new { serverName, key.KeyId, json, validUntil = keys.ValidUntilTs, now });
            }
        }, ct);
    }
}

/// <summary>A key the notary is asked for (null: any of the server's keys), to be valid until at least a time (null: now).</summary>
public sealed record KeyCriterion(string? KeyId, long? MinimumValidUntilTs)
{
    public bool Matches(string keyId) => KeyId is null || KeyId == keyId;
}
