using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Presence;

/// <summary>
/// Presence: a user's state (online, unavailable, offline) and status message, persisted with a stream position so
/// sync delivers changes to everyone sharing a room. An online user idle for <c>presence.idle_after_ms</c> reads as
/// unavailable. Everything is a no-op when presence is switched off in the config. A worker's syncs pass their users'
/// activity to the main process, which writes presence.
/// </summary>
public sealed class PresenceService(Database db, PresenceStore store, StreamPositions streams, SyncNotifier notifier, RoomReader reader,
    HomeserverConfig config, TimeProvider clock, ServerServer.FederationSender federation, ApplicationServices.AppServiceSender appServices,
    Replication.ReplicationBus replication)
{
    public static readonly string[] States = ["online", "unavailable", "offline"];
    private static readonly long ActivityWriteIntervalMs = 60_000;

    private const int MaxRemembered = 100_000;

    // The last row written per user (this service is the only writer): every sync marks its user active, and most of
    // those marks change nothing, which this tells without a database transaction.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, PresenceRow> _written = new(StringComparer.Ordinal);
    // Set before the first time the rows above are forgotten (for room): until then every change this process made is there.
    private volatile bool _forgotten;
    // A worker: the activity last passed on per user (passed on again when the state differs or half the interval passed).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string State, long At)> _passedOn = new(StringComparer.Ordinal);

    // Activity marks that change something, written in batches (a crowd coming online at once is one transaction).
    private GroupCommit<Mark>? _activity;

    private readonly RecentPresenceChanges _recentChanges = new(config.Caches.PresenceChanges);

    private sealed record Mark(string UserId, string State, string? StatusMsg, bool KeepStatusMsg, long Now);

    public bool Enabled => config.Presence.Enabled;

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Sets the state (and, when given, the status message); <paramref name="statusMsg"/> null keeps the current one only for activity updates.</summary>
    public async Task SetAsync(string userId, string state, string? statusMsg, bool keepStatusMsg, CancellationToken ct)
    {
        if (!Enabled)
            return;
        var now = Now;
        if (!config.Worker.IsMain)
        {
            PassOnActivity(userId, state, now);
            return;
        }
        if (!keepStatusMsg)
        {
            var changed = await db.WriteAsync(s => WriteAsync(s, [new Mark(userId, state, statusMsg, KeepStatusMsg: false, now)]), ct);
            await AnnounceAsync(changed, ct);
            return;
        }
        // Every sync marks its user active, and most of those marks change nothing, which this tells without a
        // database transaction; the others are written together with any that arrive meanwhile.
        if (_written.TryGetValue(userId, out var last) && Unchanged(last, state, last.StatusMsg, now))
            return;
        await LazyInitializer.EnsureInitialized(ref _activity, () => new GroupCommit<Mark>(WriteActivityAsync))
            .SubmitAsync(new Mark(userId, state, null, KeepStatusMsg: true, now), ct);
    }

    // Activity alone is written at most once a minute; a change of state or message always is.
    private static bool Unchanged(PresenceRow? current, string state, string? message, long now) =>
        current is not null && current.State == state && current.StatusMsg == message && now - current.LastActiveTs < ActivityWriteIntervalMs;

    private async Task WriteActivityAsync(IReadOnlyList<Mark> marks)
    {
        // A user marked twice in one batch: the later mark stands.
        var latest = marks.GroupBy(m => m.UserId, StringComparer.Ordinal).Select(g => g.Last()).ToList();
        await AnnounceAsync(await db.WriteAsync(s => WriteAsync(s, latest), CancellationToken.None), CancellationToken.None);
    }

    /// <summary>Writes the marks that change something; returns the rows whose state or status message changed.</summary>
    private async Task<List<PresenceRow>> WriteAsync(DbSession s, IReadOnlyList<Mark> marks)
    {
        var current = (await store.GetManyAsync(s, marks.Select(m => m.UserId).ToList())).ToDictionary(r => r.UserId, StringComparer.Ordinal);
        var changed = new List<PresenceRow>();
        foreach (var mark in marks)
        {
            var row = current.GetValueOrDefault(mark.UserId);
            var message = mark.KeepStatusMsg ? row?.StatusMsg : mark.StatusMsg;
            if (Unchanged(row, mark.State, message, mark.Now))
            {
                Remember(row!);
                continue;
            }
            var stateChanged = row is null || row.State != mark.State || row.StatusMsg != message;
            var written = new PresenceRow(mark.UserId, mark.State, message, mark.Now, stateChanged ? await streams.NextAsync(s, "presence") : row!.StreamId);
            await store.SetAsync(s, written);
            RememberWhenCommitted(s, written, tookPosition: stateChanged);
            if (stateChanged)
                changed.Add(written);
        }
        return changed;
    }

    /// <summary>Wakes the syncs of everyone sharing a room with the users whose presence changed (once each), and tells application services and other servers.</summary>
    private async Task AnnounceAsync(IReadOnlyList<PresenceRow> changed, CancellationToken ct)
    {
        var sharingByUser = new List<(PresenceRow Row, HashSet<string> Sharing)>();
        foreach (var row in changed)
            sharingByUser.Add((row, await reader.UsersSharingRoomsAsync(row.UserId, ct)));
        notifier.Notify(sharingByUser.SelectMany(u => u.Sharing).ToHashSet(StringComparer.Ordinal));
        foreach (var (row, sharing) in sharingByUser)
        {
            await appServices.QueuePresenceAsync(sharing, new JsonObject { ["type"] = "m.presence", ["sender"] = row.UserId, ["content"] = Content(row, row.UserId) }, ct);
            var update = Content(row, row.UserId);
            update["user_id"] = row.UserId;
            var servers = sharing.Select(u => Federation.Identifiers.UserId.TryParse(u, out var id) ? id.Server.Value : null).OfType<string>();
            await federation.SendEduAsync(servers, "m.presence", new JsonObject { ["push"] = new JsonArray(update) }, ct);
        }
    }

    /// <summary>Presence of another server's users, as their server reported it (an <c>m.presence</c> EDU): one transaction, one wake-up each.</summary>
    public async Task SetRemoteAsync(IReadOnlyList<RemotePresence> updates, CancellationToken ct)
    {
        var known = updates.Where(u => States.Contains(u.State)).ToList();
        if (!Enabled || known.Count == 0)
            return;
        var now = Now;
        await db.WriteAsync(async s =>
        {
            foreach (var update in known)
            {
                var row = new PresenceRow(update.UserId, update.State, update.StatusMsg, now - Math.Max(0, update.LastActiveAgo),
                    await streams.NextAsync(s, "presence"));
                await store.SetAsync(s, row);
                RememberWhenCommitted(s, row, tookPosition: true);
            }
        }, ct);
        var sharing = new HashSet<string>(StringComparer.Ordinal);
        foreach (var userId in known.Select(u => u.UserId).Distinct())
            sharing.UnionWith(await reader.UsersSharingRoomsAsync(userId, ct));
        notifier.Notify(sharing);
    }

    private void PassOnActivity(string userId, string state, long now)
    {
        var known = _passedOn.TryGetValue(userId, out var last);
        if (known && last.State == state && now - last.At < ActivityWriteIntervalMs / 2)
            return;
        // Counting takes every lock of the dictionary: only a new user can take it past the bound.
        if (!known && _passedOn.Count >= MaxRemembered)
            _passedOn.Clear();
        _passedOn[userId] = (state, now);
        replication.Publish(new Replication.ReplicationMessage.PresenceActivity(userId, state));
    }

    private void RememberWhenCommitted(DbSession s, PresenceRow row, bool tookPosition) => s.OnCompleted(committed =>
    {
        if (!committed)
            return;
        Remember(row);
        if (tookPosition)
            _recentChanges.Add(row.StreamId, row.UserId);
    });

    private void Remember(PresenceRow row)
    {
        if (!_written.ContainsKey(row.UserId) && _written.Count >= MaxRemembered)
        {
            _forgotten = true;
            _written.Clear();
        }
        // A lookup that raced a write must not replace the newer row that write remembered.
        _written.AddOrUpdate(row.UserId, row, (_, old) => (old.StreamId, old.LastActiveTs).CompareTo((row.StreamId, row.LastActiveTs)) > 0 ? old : row);
    }

    public async Task<JsonObject> GetStatusAsync(string userId, CancellationToken ct)
    {
        var row = Enabled ? await db.ReadAsync(s => store.GetAsync(s, userId), ct) : null;
        return Content(row, userId);
    }

    /// <summary>The presence content a client sees: the idle rule applied, <c>last_active_ago</c> relative to now.</summary>
    public JsonObject Content(PresenceRow? row, string userId)
    {
        if (row is null)
            return new JsonObject { ["presence"] = "offline" };
        var idleFor = Now - row.LastActiveTs;
        var state = row.State == "online" && idleFor > config.Presence.IdleAfterMs ? "unavailable" : row.State;
        var content = new JsonObject
        {
            ["presence"] = state,
            ["last_active_ago"] = Math.Max(0, idleFor),
            ["currently_active"] = state == "online",
        };
        if (row.StatusMsg is not null)
            content["status_msg"] = row.StatusMsg;
        return content;
    }

    /// <summary>
    /// The rows of the user's room-mates (and the user's own) changed in the window, from what this process wrote, when
    /// it knows every change of the window; else null. The fewer of the window's changes and the room-mates are looked
    /// through: after a crowd came online, each of its room-mates' syncs asks about a few room-mates, not the crowd.
    /// </summary>
    private List<PresenceRow>? RememberedChanges(string userId, long after, long upTo, List<RoomSnapshot> joinedRooms)
    {
        var roomMates = 1;
        foreach (var room in joinedRooms)
            roomMates += room.JoinedMembers.Count;
        if (roomMates < upTo - after && _recentChanges.Knows(after, upTo) && !_forgotten)
        {
            // Each change of the window was remembered before its position became known, and nothing was forgotten
            // since this process started: a room-mate not remembered has not changed in the window.
            var rows = new List<PresenceRow>();
            if (_written.TryGetValue(userId, out var own))
                AddIfInWindow(rows, own, after, upTo);
            foreach (var room in joinedRooms)
                foreach (var member in room.JoinedMembers)
                    if (_written.TryGetValue(member, out var row))
                        AddIfInWindow(rows, row, after, upTo);
            return _forgotten ? null : rows;
        }
        return RememberedChangesOf(_recentChanges.UsersIn(after, upTo), userId, after, upTo, joinedRooms);
    }

    private List<PresenceRow>? RememberedChangesOf(List<string>? changedUsers, string userId, long after, long upTo, List<RoomSnapshot> joinedRooms)
    {
        if (changedUsers is null)
            return null;
        var rows = new List<PresenceRow>();
        foreach (var user in changedUsers)
            if (user == userId || SharesRoom(joinedRooms, user))
            {
                if (!_written.TryGetValue(user, out var row))
                    return null;
                AddIfInWindow(rows, row, after, upTo);
            }
        return rows;
    }

    private static bool SharesRoom(List<RoomSnapshot> joinedRooms, string user)
    {
        foreach (var room in joinedRooms)
            if (room.JoinedMembers.Contains(user))
                return true;
        return false;
    }

    // A user who changed again after the window is left to a later one, as the database's rows would be.
    private static void AddIfInWindow(List<PresenceRow> rows, PresenceRow row, long after, long upTo)
    {
        if (row.StreamId <= after || row.StreamId > upTo)
            return;
        foreach (var added in rows)
            if (added.UserId == row.UserId)
                return;
        rows.Add(row);
    }

    /// <summary>
    /// Presence events for a sync: changes in the window by users who share a room with the requester, and the current
    /// presence of <paramref name="newlySharing"/> (users the requester just began to share a room with), changed or not,
    /// as Synapse gives it.
    /// </summary>
    // Its own method: a lambda capturing the caller's parameters would be allocated on every call, even one that reads nothing.
    private Task<(List<PresenceRow> Changes, List<PresenceRow> Current)> ReadChangesAsync(List<PresenceRow>? remembered, long after, long upTo,
        IReadOnlySet<string>? visible, IReadOnlyCollection<string> newlySharing, CancellationToken ct) =>
        db.ReadAsync(async s => (remembered ?? await store.ChangedSinceAsync(s, after, upTo, visible!), await store.GetManyAsync(s, newlySharing)), ct);

    public async ValueTask<JsonArray> ChangesForAsync(string userId, long after, long upTo, IReadOnlyCollection<string> newlySharing, CancellationToken ct)
    {
        var events = new JsonArray();
        if (!Enabled || (after >= upTo && newlySharing.Count == 0))
            return events;
        var joinedRooms = after < upTo ? await reader.JoinedRoomsAsync(userId, ct) : null;
        var remembered = joinedRooms is null ? [] : RememberedChanges(userId, after, upTo, joinedRooms);
        var (changes, current) = remembered is not null && newlySharing.Count == 0
            ? (remembered, [])
            : await ReadChangesAsync(remembered, after, upTo, remembered is null ? RoomReader.UsersSharing(userId, joinedRooms!) : null, newlySharing, ct);
        foreach (var row in changes)
            events.Add(Event(row.UserId, row));
        // One never seen online is offline, which is news to someone who just began to share a room with them.
        var rows = current.ToDictionary(r => r.UserId, StringComparer.Ordinal);
        var changed = changes.Select(r => r.UserId).ToHashSet(StringComparer.Ordinal);
        foreach (var user in newlySharing.Where(u => !changed.Contains(u)))
            events.Add(Event(user, rows.GetValueOrDefault(user)));
        return events;
    }

    /// <summary>Presence changes in the window of the room's joined members (what a peek at the room's event stream shows).</summary>
    public async Task<List<JsonObject>> RoomChangesAsync(Rooms.RoomSnapshot room, long after, long upTo, CancellationToken ct) =>
        !Enabled || after >= upTo
            ? []
            : (await db.ReadAsync(s => store.ChangedSinceAsync(s, after, upTo, room.JoinedMembers), ct)).Select(row => Event(row.UserId, row)).ToList();

    private JsonObject Event(string userId, PresenceRow? row) =>
        new() { ["type"] = "m.presence", ["sender"] = userId, ["content"] = Content(row, userId) };
}
