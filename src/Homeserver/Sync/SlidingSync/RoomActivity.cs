using System.Collections.Concurrent;
using System.Collections.Frozen;
using Matrix.Federation.Events;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>
/// Per room, the stream position of its latest event (what sliding sync orders rooms by) and of its latest "bump"
/// event (its <c>bump_stamp</c>: the event types Synapse counts as activity a room list should show). Read from the
/// database once per room and kept by following every accepted event; a room's entry is written on every event even
/// before it was read, and merged with the database's answer by maximum, so an event committed while the room is
/// being read is not lost.
/// </summary>
public sealed class RoomActivity(Database db) : IEventListener
{
    public static readonly FrozenSet<string> BumpTypes = new[]
    {
        "m.room.create", "m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite", "m.poll.start", "m.beacon_info",
    }.ToFrozenSet(StringComparer.Ordinal);

    private const int RoomsPerRead = 250;
    private const string Served = "rejected = 0 AND soft_failed = 0 AND outlier = 0";
    private static readonly string BumpTypeList = string.Join(", ", BumpTypes.Select(t => $"'{t}'"));

    /// <summary>Positions of a room's latest event and latest bump event (null: none known).</summary>
    public readonly record struct Positions(long? Latest, long? Bump);

    private readonly record struct Entry(long? Latest, long? Bump, bool Read);

    private readonly ConcurrentDictionary<string, Entry> _rooms = new(StringComparer.Ordinal);

    public async Task<IReadOnlyDictionary<string, Positions>> ForRoomsAsync(IReadOnlyCollection<string> roomIds, CancellationToken ct)
    {
        var unread = roomIds.Where(id => !(_rooms.TryGetValue(id, out var entry) && entry.Read)).Distinct().ToList();
        foreach (var chunk in unread.Chunk(RoomsPerRead))
        {
            var reads = chunk.Select(id => (RoomId: id, Latest: LatestRead(id, bumpOnly: false), Bump: LatestRead(id, bumpOnly: true))).ToList();
            await db.ReadAllAsync(reads.SelectMany(r => new SqlRead[] { r.Latest, r.Bump }).ToList(), ct);
            foreach (var read in reads)
                _rooms.AddOrUpdate(read.RoomId, _ => new Entry(read.Latest.Result, read.Bump.Result, true),
                    (_, known) => new Entry(Max(known.Latest, read.Latest.Result), Max(known.Bump, read.Bump.Result), true));
        }
        return roomIds.Distinct().ToDictionary(id => id, id => _rooms.TryGetValue(id, out var entry) ? new Positions(entry.Latest, entry.Bump) : default);
    }

    public Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        var bump = BumpTypes.Contains(pdu.Type) ? streamOrdering : (long?)null;
        _rooms.AddOrUpdate(pdu.RoomId, _ => new Entry(streamOrdering, bump, false),
            (_, known) => known with { Latest = Max(known.Latest, streamOrdering), Bump = Max(known.Bump, bump) });
        return Task.CompletedTask;
    }

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
    }

    private static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);

    private static SqlRead<long, long?> LatestRead(string roomId, bool bumpOnly) => new(
        "SELECT stream_ordering FROM events WHERE room_id = @roomId AND room_id >= @roomId AND room_id <= @roomId AND " + Served
        + (bumpOnly ? $" AND type IN ({BumpTypeList})" : "") + " ORDER BY stream_ordering DESC LIMIT 1",
        new { roomId }, rows => rows.Select(r => (long?)r).FirstOrDefault());
}
