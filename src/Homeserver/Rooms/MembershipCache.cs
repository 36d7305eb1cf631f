using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// A user's memberships (from current state), the rooms they forgot, and their invites to and knocks on rooms this
/// server is not in.
/// </summary>
public sealed record UserMemberships(List<MembershipRow> Memberships, HashSet<string> Forgotten, List<RemoteInviteRow> RemoteInvites);

/// <summary>
/// Every user's <see cref="UserMemberships"/> that a sync, or a presence or device change, read lately: every woken sync
/// needs them, and they change only when a member event for the user enters the current state, the user forgets or
/// unforgets a room, a remote invite for them comes or goes, or a room is purged. Writes in this process invalidate in their transaction; other processes'
/// through replication.
/// </summary>
public sealed class MembershipCache(Config.HomeserverConfig config, Replication.ReplicationBus replication) : IExpiringCache
{
    private readonly VersionedCache<string, UserMemberships> _users = new(config.Caches.Memberships);

    internal VersionedCache<string, UserMemberships> Users => _users;

    /// <summary>Called by every write that changes the user's memberships or forgotten rooms.</summary>
    public void Changed(DbSession s, string userId)
    {
        _users.Invalidate(s, userId);
        if (replication.Enabled)
            s.OnCompleted(_ => replication.Publish(
                new Replication.ReplicationMessage.Invalidation(Replication.ReplicationMessage.Invalidation.Memberships, userId)));
    }

    /// <summary>Another process changed the user's memberships.</summary>
    public void ApplyInvalidation(string userId) => _users.Invalidate(userId);

    /// <summary>A room was purged (its members' entries all go), or invalidations may have been missed.</summary>
    public void ForgetAll() => _users.Clear();

    public int ExpireUnusedSince(long cutoff) => _users.ExpireUnusedSince(cutoff);
}
