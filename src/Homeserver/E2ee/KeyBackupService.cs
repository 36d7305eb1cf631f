using System.Globalization;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

/// <summary>
/// Server-side key backups (spec: "Server-side key backups"): one current version per user; keys are written only to
/// the current version; a stored key is replaced only by a better one (verified, then earlier first message index,
/// then fewer forwards); every change of the keys moves the version's <c>etag</c>.
/// </summary>
public sealed class KeyBackupService(Database db, KeyBackupStore store)
{
    public static long ParseVersion(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version
            : throw MatrixException.NotFound("Unknown backup version.");

    public Task<long> CreateVersionAsync(string userId, string algorithm, JsonObject authData, CancellationToken ct) =>
        db.WriteAsync(s => store.CreateAsync(s, userId, algorithm, authData.ToJsonString()), ct);

    /// <summary>The version's description, or the latest version's when <paramref name="version"/> is null.</summary>
    public async Task<JsonObject> DescribeAsync(string userId, long? version, CancellationToken ct)
    {
        var (row, count) = await db.ReadAsync(async s =>
        {
            var found = version is { } v ? await store.GetAsync(s, userId, v) : await store.LatestAsync(s, userId);
            return (found, found is null ? 0 : await store.CountAsync(s, userId, found.Version));
        }, ct);
        if (row is null)
            throw MatrixException.NotFound("No backup found.");
        return new JsonObject
        {
            ["algorithm"] = row.Algorithm,
            ["auth_data"] = JsonNode.Parse(row.AuthData),
            ["count"] = count,
            ["etag"] = row.Etag.ToString(CultureInfo.InvariantCulture),
            ["version"] = row.Version.ToString(CultureInfo.InvariantCulture),
        };
    }

    public Task UpdateVersionAsync(string userId, long version, string algorithm, JsonObject authData, CancellationToken ct) => db.WriteAsync(async s =>
    {
        var row = await store.GetAsync(s, userId, version) ?? throw MatrixException.NotFound("Unknown backup version.");
        if (row.Algorithm != algorithm)
            throw MatrixException.InvalidParam("The algorithm of a backup cannot be changed.");
        await store.SetAuthDataAsync(s, userId, version, authData.ToJsonString());
    }, ct);

    public async Task DeleteVersionAsync(string userId, long version, CancellationToken ct)
    {
        if (!await db.WriteAsync(s => store.DeleteVersionAsync(s, userId, version), ct))
            throw MatrixException.NotFound("Unknown backup version.");
    }

    /// <summary>Stores keys in the current version; any other version is refused with <c>M_WRONG_ROOM_KEYS_VERSION</c>.</summary>
    public Task<JsonObject> PutKeysAsync(string userId, long version, IReadOnlyList<BackupKeyRow> keys, CancellationToken ct) => db.WriteAsync(async s =>
    {
        var current = await store.LatestAsync(s, userId);
        if (current is null || await store.GetAsync(s, userId, version) is null)
            throw MatrixException.NotFound("Unknown backup version.");
        if (current.Version != version)
            throw new MatrixException(403, "M_WRONG_ROOM_KEYS_VERSION", "That is not the current backup version.",
                new JsonObject { ["current_version"] = current.Version.ToString(CultureInfo.InvariantCulture) });
        var changed = false;
        foreach (var key in keys)
        {
            var existing = (await store.KeysAsync(s, userId, version, key.RoomId, key.SessionId)).FirstOrDefault();
            if (existing is not null && !IsBetter(key, existing))
                continue;
            await store.SetKeyAsync(s, userId, version, key);
            changed = true;
        }
        if (changed)
            await store.BumpEtagAsync(s, userId, version);
        return await UpdateResultAsync(s, userId, version);
    }, ct);

    private static bool IsBetter(BackupKeyRow candidate, BackupKeyRow existing) =>
        candidate.IsVerified != existing.IsVerified ? candidate.IsVerified > existing.IsVerified
        : candidate.FirstMessageIndex != existing.FirstMessageIndex ? candidate.FirstMessageIndex < existing.FirstMessageIndex
        : candidate.ForwardedCount < existing.ForwardedCount;

    public async Task<List<BackupKeyRow>> GetKeysAsync(string userId, long version, string? roomId, string? sessionId, CancellationToken ct)
    {
        var (exists, keys) = await db.ReadAsync(async s =>
            (await store.GetAsync(s, userId, version) is not null, await store.KeysAsync(s, userId, version, roomId, sessionId)), ct);
        return exists ? keys : throw MatrixException.NotFound("Unknown backup version.");
    }

    public Task<JsonObject> DeleteKeysAsync(string userId, long version, string? roomId, string? sessionId, CancellationToken ct) => db.WriteAsync(async s =>
    {
        if (await store.GetAsync(s, userId, version) is null)
            throw MatrixException.NotFound("Unknown backup version.");
        if (await store.DeleteKeysAsync(s, userId, version, roomId, sessionId) > 0)
            await store.BumpEtagAsync(s, userId, version);
        return await UpdateResultAsync(s, userId, version);
    }, ct);

    private async Task<JsonObject> UpdateResultAsync(DbSession s, string userId, long version) => new()
    {
        ["etag"] = (await store.GetAsync(s, userId, version))!.Etag.ToString(CultureInfo.InvariantCulture),
        ["count"] = await store.CountAsync(s, userId, version),
    };
}
