using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// The local users deactivated with erasure (GDPR), kept in memory (they are few and every timeline asks): loaded on
/// first use, read again after an erasure or a reactivation changes them (in every process of a deployment).
/// </summary>
public sealed class ErasedUsers(Database db, Replication.ReplicationBus replication)
{
    private volatile IReadOnlySet<string>? _erased;

    public async Task<IReadOnlySet<string>> GetAsync(CancellationToken ct) =>
        _erased ??= (await db.ReadAsync(s => s.QueryAsync<string>("SELECT user_id FROM users WHERE erased = 1"), ct)).ToHashSet(StringComparer.Ordinal);

    /// <summary>An erasure or a reactivation was committed.</summary>
    public void Changed()
    {
        _erased = null;
        replication.Publish(new Replication.ReplicationMessage.Invalidation(Replication.ReplicationMessage.Invalidation.ErasedUsers));
    }

    /// <summary>Another process changed them, or this one may have missed that.</summary>
    public void ApplyInvalidation() => _erased = null;
}
