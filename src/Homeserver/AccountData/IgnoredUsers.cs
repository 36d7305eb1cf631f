using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.AccountData;

/// <summary>Spec: Ignoring users: the <c>m.ignored_user_list</c> account data, whose users' events and invites are not delivered.</summary>
public sealed class IgnoredUsers(Database db, AccountDataStore accountData, Replication.ReplicationBus replication)
{
    public const string AccountDataType = "m.ignored_user_list";
    private const int MaxCached = 100_000;

    // Every event checks its local recipients' lists (push): kept in memory, dropped when the user changes theirs.
    private readonly ConcurrentDictionary<string, IReadOnlySet<string>> _cache = new(StringComparer.Ordinal);

    public ValueTask<IReadOnlySet<string>> OfAsync(string userId, CancellationToken ct) =>
        _cache.TryGetValue(userId, out var cached) ? new(cached) : new(db.ReadAsync(s => OfAsync(s, userId), ct));

    /// <summary>The same through the caller's session (inside an event's transaction).</summary>
    public async Task<IReadOnlySet<string>> OfAsync(DbSession s, string userId) =>
        _cache.TryGetValue(userId, out var cached)
            ? cached
            : Remember(userId, await accountData.GetAsync(s, userId, AccountDataStore.Global, AccountDataType));

    /// <summary>The lists of an event's recipients through its session, those not in memory read in one query.</summary>
    public Task<Dictionary<string, IReadOnlySet<string>>> OfUsersAsync(DbSession s, IReadOnlyCollection<string> userIds) =>
        accountData.GlobalOfUsersAsync(s, userIds, AccountDataType, _cache.GetValueOrDefault, Remember);

    private IReadOnlySet<string> Remember(string userId, string? stored)
    {
        IReadOnlySet<string> ignored = stored is not null && JsonNode.Parse(stored)?["ignored_users"] is JsonObject users
            ? users.Select(u => u.Key).ToHashSet(StringComparer.Ordinal)
            : new HashSet<string>();
        if (_cache.Count >= MaxCached)
            _cache.Clear();
        _cache[userId] = ignored;
        return ignored;
    }

    /// <summary>The user changed their list (after the write's commit).</summary>
    public void Forget(string userId)
    {
        _cache.TryRemove(userId, out _);
        replication.Publish(new Replication.ReplicationMessage.Invalidation(Replication.ReplicationMessage.Invalidation.IgnoredUsers, userId));
    }

    /// <summary>A worker: the main process saw the user change their list.</summary>
    public void ApplyInvalidation(string userId) => _cache.TryRemove(userId, out _);

    /// <summary>A worker that may have missed invalidations.</summary>
    public void ForgetAll() => _cache.Clear();
}
