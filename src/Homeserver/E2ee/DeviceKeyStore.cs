using Dapper;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

public sealed record DeviceKeysRow(string UserId, string DeviceId, string KeyJson, string? DisplayName);

public sealed record OneTimeKeyRow(string KeyId, string KeyJson);

/// <summary>What every <c>/sync</c> tells a device of its keys: one-time keys left per algorithm, fallback keys not yet used.</summary>
public sealed record DeviceKeyCounts(Dictionary<string, long> OneTimeKeys, List<string> UnusedFallbackAlgorithms);

/// <summary>Device identity keys, one-time keys and fallback keys of this server's devices.</summary>
public sealed class DeviceKeyStore(Config.HomeserverConfig config, Replication.ReplicationBus replication) : IExpiringCache
{
    // Every sync of a device answers its key counts; they change only by the device's uploads and others' claims.
    private readonly VersionedCache<(string UserId, string DeviceId), DeviceKeyCounts> _counts = new(config.Caches.DeviceKeyCounts);

    /// <summary>A device's key counts for a sync: from memory, or by reads run in the sync's batch.</summary>
    public CachedLookup<(string UserId, string DeviceId), DeviceKeyCounts> CountsForSync(string userId, string deviceId) =>
        new(_counts, (userId, deviceId), () =>
        {
            var (oneTimeKeys, fallback) = (OneTimeKeyCounts(userId, deviceId), UnusedFallbackAlgorithms(userId, deviceId));
            return ([oneTimeKeys, fallback], () => new DeviceKeyCounts(oneTimeKeys.Result, fallback.Result));
        });

    public int ExpireUnusedSince(long cutoff) => _counts.ExpireUnusedSince(cutoff);

    private void KeysChanged(DbSession s, string userId, string deviceId)
    {
        _counts.Invalidate(s, (userId, deviceId));
        if (replication.Enabled)
            s.OnCompleted(_ => replication.Publish(
                new Replication.ReplicationMessage.Invalidation(Replication.ReplicationMessage.Invalidation.DeviceKeyCounts, userId, deviceId)));
    }

    /// <summary>A worker: the main process changed the device's keys.</summary>
    public void ApplyInvalidation(string userId, string deviceId) => _counts.Invalidate((userId, deviceId));

    /// <summary>A worker that may have missed invalidations.</summary>
    public void ForgetCounts() => _counts.Clear();

    public Task<string?> GetDeviceKeysAsync(DbSession s, string userId, string deviceId) =>
        s.QuerySingleOrDefaultAsync<string>("SELECT key_json FROM e2e_device_keys WHERE user_id = @userId AND device_id = @deviceId",
            new { userId, deviceId });

    public Task SetDeviceKeysAsync(DbSession s, string userId, string deviceId, string keyJson) =>
        s.ExecuteAsync("""
            INSERT INTO e2e_device_keys (user_id, device_id, key_json) VALUES (@userId, @deviceId, @keyJson)
            ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json
            """, new { userId, deviceId, keyJson });

    /// <summary>The device keys of the given users' devices that still exist (a deleted device's keys go with it).</summary>
    public async Task<List<DeviceKeysRow>> ForUsersAsync(DbSession s, IReadOnlyCollection<string> userIds)
    {
        if (userIds.Count == 0)
            return [];
        var args = new SqlArgs();
        return (await s.QueryAsync<DeviceKeysRow>($"""
            SELECT k.user_id, k.device_id, k.key_json, d.display_name FROM e2e_device_keys k
            JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id
            WHERE k.user_id IN {SqlList.In(args, "u", userIds)}
            """, args)).ToList();
    }

    public async Task<string?> GetOneTimeKeyAsync(DbSession s, string userId, string deviceId, string keyId) =>
        await s.QuerySingleOrDefaultAsync<string>(
            "SELECT key_json FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId AND key_id = @keyId",
            new { userId, deviceId, keyId });

    public Task AddOneTimeKeyAsync(DbSession s, string userId, string deviceId, string keyId, string algorithm, string keyJson)
    {
        KeysChanged(s, userId, deviceId);
        return s.ExecuteAsync("""
            INSERT INTO e2e_one_time_keys (user_id, device_id, key_id, algorithm, key_json) VALUES (@userId, @deviceId, @keyId, @algorithm, @keyJson)
            """, new { userId, deviceId, keyId, algorithm, keyJson });
    }

    /// <summary>
    /// Takes one unclaimed one-time key of the algorithm, or null. The row is deleted by this transaction: a concurrent
    /// claim that picked the same key deletes nothing and moves on to the next, so no key is handed out twice.
    /// </summary>
    public async Task<OneTimeKeyRow?> TakeOneTimeKeyAsync(DbSession s, string userId, string deviceId, string algorithm)
    {
        KeysChanged(s, userId, deviceId);
        while (true)
        {
            var candidates = (await s.QueryAsync<OneTimeKeyRow>("""
                SELECT key_id, key_json FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId AND algorithm = @algorithm
                ORDER BY key_id LIMIT 5
                """, new { userId, deviceId, algorithm })).ToList();
            if (candidates.Count == 0)
                return null;
            foreach (var candidate in candidates)
                if (await s.ExecuteAsync("DELETE FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId AND key_id = @keyId",
                        new { userId, deviceId, keyId = candidate.KeyId }) == 1)
                    return candidate;
        }
    }

    private static SqlRead<(string Algorithm, long Count), Dictionary<string, long>> OneTimeKeyCounts(string userId, string deviceId) => new(
        "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId GROUP BY algorithm",
        new { userId, deviceId }, rows => rows.ToDictionary(r => r.Algorithm, r => r.Count));

    public Task<Dictionary<string, long>> CountOneTimeKeysAsync(DbSession s, string userId, string deviceId) => s.QueryAsync(OneTimeKeyCounts(userId, deviceId));

    /// <summary>Replaces the device's fallback key of the key's algorithm, unless it is the same key (then its used flag stays).</summary>
    public async Task SetFallbackKeyAsync(DbSession s, string userId, string deviceId, string algorithm, string keyId, string keyJson)
    {
        var existing = await s.QuerySingleOrDefaultAsync<string>(
            "SELECT key_json FROM e2e_fallback_keys WHERE user_id = @userId AND device_id = @deviceId AND algorithm = @algorithm AND key_id = @keyId",
            new { userId, deviceId, algorithm, keyId });
        if (existing == keyJson)
            return;
        KeysChanged(s, userId, deviceId);
        await s.ExecuteAsync("""
            INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES (@userId, @deviceId, @algorithm, @keyId, @keyJson, 0)
            ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key_json = excluded.key_json, used = 0
            """, new { userId, deviceId, algorithm, keyId, keyJson });
    }

    /// <summary>The fallback key of the algorithm, marked used (it stays available until replaced).</summary>
    public async Task<OneTimeKeyRow?> UseFallbackKeyAsync(DbSession s, string userId, string deviceId, string algorithm)
    {
        var row = await s.QuerySingleOrDefaultAsync<OneTimeKeyRow>(
            "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = @userId AND device_id = @deviceId AND algorithm = @algorithm",
            new { userId, deviceId, algorithm });
        if (row is not null)
        {
            KeysChanged(s, userId, deviceId);
            await s.ExecuteAsync("UPDATE e2e_fallback_keys SET used = 1 WHERE user_id = @userId AND device_id = @deviceId AND algorithm = @algorithm",
                new { userId, deviceId, algorithm });
        }
        return row;
    }

    private static SqlRead<string, List<string>> UnusedFallbackAlgorithms(string userId, string deviceId) => SqlReads.Rows<string>(
        "SELECT algorithm FROM e2e_fallback_keys WHERE user_id = @userId AND device_id = @deviceId AND used = 0 ORDER BY algorithm",
        new { userId, deviceId });

    public Task<List<string>> UnusedFallbackAlgorithmsAsync(DbSession s, string userId, string deviceId) =>
        s.QueryAsync(UnusedFallbackAlgorithms(userId, deviceId));

    /// <summary>Everything stored for a device: removed with the device.</summary>
    public async Task DeleteDeviceAsync(DbSession s, string userId, string deviceId)
    {
        KeysChanged(s, userId, deviceId);
        var args = new { userId, deviceId };
        await s.ExecuteAsync("DELETE FROM e2e_device_keys WHERE user_id = @userId AND device_id = @deviceId", args);
        await s.ExecuteAsync("DELETE FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId", args);
        await s.ExecuteAsync("DELETE FROM e2e_fallback_keys WHERE user_id = @userId AND device_id = @deviceId", args);
        await s.ExecuteAsync("DELETE FROM e2e_key_signatures WHERE user_id = @userId AND target_key_id = @deviceId", args);
        await s.ExecuteAsync("DELETE FROM to_device_messages WHERE user_id = @userId AND device_id = @deviceId", args);
    }
}
