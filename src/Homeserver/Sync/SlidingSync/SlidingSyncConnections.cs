using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>
/// What a connection has sent of one room: its events up to a stream position, with the user's membership then, the
/// room config they were sent with, and the users whose member events were sent lazily.
/// </summary>
public sealed record SentRoom(long EventsUpTo, string Membership, RoomConfig Config, IReadOnlySet<string> LazyMembers)
{
    public static readonly IReadOnlySet<string> NoMembers = FrozenSet<string>.Empty;
}

/// <summary>
/// A <c>pos</c>: which of a connection's states the client holds (<see cref="Position"/>) and where every stream stood
/// when it was made, written <c>&lt;position&gt;/&lt;sync token&gt;</c>.
/// </summary>
public readonly record struct SlidingSyncPos(long Position, SyncToken Streams)
{
    public override string ToString() => $"{Position.ToString(CultureInfo.InvariantCulture)}/{Streams}";

    public static SlidingSyncPos? TryParse(string text)
    {
        var slash = text.IndexOf('/');
        if (slash <= 0 || !long.TryParse(text.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out var position))
            return null;
        try
        {
            return new SlidingSyncPos(position, SyncToken.Parse(text[(slash + 1)..], "pos"));
        }
        catch (Http.MatrixException)
        {
            return null;
        }
    }
}

/// <summary>
/// Sliding sync connections, per user, device and <c>conn_id</c>, each with the states (rooms sent) that the last
/// responses left it in (immutable maps: successive states share what did not change). A request names the state it
/// continues from; a retry may name the same state again, so states are dropped only once a later one has been named. Held in memory: after a restart, or once a connection has been
/// idle for a day or pushed out by newer ones, its <c>pos</c> is unknown and the client starts over (MSC4186 lets a
/// server expire connections so).
/// </summary>
public sealed class SlidingSyncConnections(TimeProvider clock)
{
    public const int MaxConnectionsPerDevice = 10;
    private const int MaxStatesPerConnection = 4;
    private static readonly TimeSpan IdleExpiry = TimeSpan.FromDays(1);
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(10);

    private readonly record struct Key(string UserId, string DeviceId, string ConnId);

    private sealed class Connection
    {
        public long LatestPosition;
        public DateTimeOffset LastUsed;
        public readonly SortedDictionary<long, ImmutableDictionary<string, SentRoom>> States = [];
    }

    private readonly Dictionary<Key, Connection> _connections = [];
    private readonly Lock _lock = new();
    private DateTimeOffset _lastSweep = DateTimeOffset.MinValue;

    /// <summary>The rooms sent as of <paramref name="position"/>, or null when the connection or that state is unknown.</summary>
    public ImmutableDictionary<string, SentRoom>? Resume(string userId, string deviceId, string connId, long position)
    {
        lock (_lock)
        {
            if (!_connections.TryGetValue(new Key(userId, deviceId, connId), out var connection)
                || !connection.States.TryGetValue(position, out var rooms))
                return null;
            foreach (var older in connection.States.Keys.Where(p => p < position).ToList())
                connection.States.Remove(older);
            connection.LastUsed = clock.GetUtcNow();
            return rooms;
        }
    }

    /// <summary>Records a new state of the connection (a new one when <paramref name="restart"/>) and returns its position.</summary>
    public long Save(string userId, string deviceId, string connId, ImmutableDictionary<string, SentRoom> rooms, bool restart)
    {
        var now = clock.GetUtcNow();
        lock (_lock)
        {
            SweepIdle(now);
            var key = new Key(userId, deviceId, connId);
            if (restart || !_connections.TryGetValue(key, out var connection))
            {
                var previous = _connections.GetValueOrDefault(key);
                _connections[key] = connection = new Connection { LatestPosition = previous?.LatestPosition ?? 0 };
                EvictBeyondLimit(userId, deviceId, key);
            }
            connection.LastUsed = now;
            var position = ++connection.LatestPosition;
            connection.States[position] = rooms;
            while (connection.States.Count > MaxStatesPerConnection)
                connection.States.Remove(connection.States.Keys.First());
            return position;
        }
    }

    private void EvictBeyondLimit(string userId, string deviceId, Key keep)
    {
        var own = _connections.Where(c => c.Key.UserId == userId && c.Key.DeviceId == deviceId && c.Key != keep).ToList();
        foreach (var stale in own.OrderBy(c => c.Value.LastUsed).Take(Math.Max(0, own.Count + 1 - MaxConnectionsPerDevice)))
            _connections.Remove(stale.Key);
    }

    private void SweepIdle(DateTimeOffset now)
    {
        if (now - _lastSweep < SweepInterval)
            return;
        _lastSweep = now;
        foreach (var idle in _connections.Where(c => now - c.Value.LastUsed > IdleExpiry).Select(c => c.Key).ToList())
            _connections.Remove(idle);
    }
}
