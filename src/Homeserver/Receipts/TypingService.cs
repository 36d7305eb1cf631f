using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Receipts;

/// <summary>
/// Who is typing where, in memory only (typing is ephemeral). Every change, including an expiry, takes a new serial so
/// a sync knows whether a room's typing list changed since its token. The main process of a deployment of several keeps
/// it and sends every change to its workers, whose copies take the main process's serials.
/// </summary>
public sealed class TypingService(SyncNotifier notifier, EventSpine spine, TimeProvider clock, ServerServer.FederationSender federation,
    ApplicationServices.AppServiceSender appServices, Config.HomeserverConfig config, Replication.ReplicationBus replication) : IDisposable
{
    public const int MaxTimeoutMs = 120_000;
    private readonly Dictionary<string, Dictionary<string, long>> _typing = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _roomSerial = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private ITimer? _expiry;
    private long _serial;

    public long CurrentSerial { get { lock (_lock) return _serial; } }

    public async Task SetAsync(string roomId, string userId, bool typing, int timeoutMs, CancellationToken ct)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_lock)
        {
            _expiry ??= clock.CreateTimer(_ => ExpireAsync().GetAwaiter().GetResult(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
            if (!_typing.TryGetValue(roomId, out var users))
                _typing[roomId] = users = new Dictionary<string, long>(StringComparer.Ordinal);
            var changed = typing ? !users.ContainsKey(userId) : users.Remove(userId);
            if (typing)
                users[userId] = now + Math.Clamp(timeoutMs, 0, MaxTimeoutMs);
            if (!changed)
                return;
            Changed(roomId, users);
        }
        await NotifyRoomAsync(roomId, ct);
        if (await spine.GetRoomAsync(roomId, ct) is not { } room)
            return;
        await appServices.QueueEphemeralAsync(room, Event(Get(roomId, 0).Users), ct);
        if (Federation.Events.EventSigning.ServerOf(userId) == config.ServerName)
            await federation.SendEduAsync(room.JoinedServers, "m.typing",
                new System.Text.Json.Nodes.JsonObject { ["room_id"] = roomId, ["user_id"] = userId, ["typing"] = typing }, ct);
    }

    /// <summary>An <c>m.typing</c> event listing the users.</summary>
    public static System.Text.Json.Nodes.JsonObject Event(IEnumerable<string> userIds) => new()
    {
        ["type"] = "m.typing",
        ["content"] = new System.Text.Json.Nodes.JsonObject
        {
            ["user_ids"] = new System.Text.Json.Nodes.JsonArray(userIds.Select(u => (System.Text.Json.Nodes.JsonNode)u).ToArray()),
        },
    };

    /// <summary>The room's typing users, and whether the list changed after <paramref name="sinceSerial"/>.</summary>
    public (IReadOnlyList<string> Users, bool Changed) Get(string roomId, long sinceSerial)
    {
        lock (_lock)
        {
            var users = _typing.TryGetValue(roomId, out var map) ? map.Keys.Order(StringComparer.Ordinal).ToList() : [];
            // A serial from before a restart is larger than ours: the list is then reported as changed.
            var changed = _roomSerial.TryGetValue(roomId, out var serial) && (serial > sinceSerial || sinceSerial > _serial);
            return (users, changed);
        }
    }

    private async Task ExpireAsync()
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var expiredRooms = new List<string>();
        lock (_lock)
        {
            foreach (var (roomId, users) in _typing)
            {
                var expired = users.Where(u => u.Value <= now).Select(u => u.Key).ToList();
                if (expired.Count == 0)
                    continue;
                foreach (var user in expired)
                    users.Remove(user);
                Changed(roomId, users);
                expiredRooms.Add(roomId);
            }
        }
        foreach (var roomId in expiredRooms)
            await NotifyRoomAsync(roomId, CancellationToken.None);
    }

    /// <summary>Under the lock: the room's list changed (announced to workers before their syncs are woken).</summary>
    private void Changed(string roomId, Dictionary<string, long> users)
    {
        _roomSerial[roomId] = ++_serial;
        replication.Publish(new Replication.ReplicationMessage.Typing(roomId, users.Keys.ToList(), _serial));
    }

    /// <summary>A worker: the main process's typing list of a room, with the serial of its change.</summary>
    public void ApplyFromMain(string roomId, IReadOnlyList<string> userIds, long serial)
    {
        lock (_lock)
        {
            _typing[roomId] = userIds.ToDictionary(u => u, _ => long.MaxValue, StringComparer.Ordinal);
            _roomSerial[roomId] = serial;
            _serial = serial;
        }
    }

    /// <summary>A worker: the main process restarted, and typing (kept in its memory only) with it.</summary>
    public void ForgetAll()
    {
        lock (_lock)
        {
            _typing.Clear();
            _roomSerial.Clear();
            _serial = 0;
        }
    }

    private async Task NotifyRoomAsync(string roomId, CancellationToken ct)
    {
        // The room's ID too: it wakes those peeking into the room (GET /events?room_id=).
        if (await spine.GetRoomAsync(roomId, ct) is { } room)
            notifier.Notify([.. room.MemberUserIds, roomId]);
    }

    public void Dispose() => _expiry?.Dispose();
}
