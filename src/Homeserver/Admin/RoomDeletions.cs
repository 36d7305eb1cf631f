using System.Collections.Concurrent;
using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// The room deletions the v2 admin API started, kept in memory for a day after they end (as Synapse keeps them), so
/// their status can be asked by delete ID or by room. One deletion per room runs at a time.
/// </summary>
public sealed class RoomDeletions(TimeProvider clock)
{
    private static readonly TimeSpan KeptFor = TimeSpan.FromDays(1);

    public sealed class Deletion(string deleteId, string roomId)
    {
        public string DeleteId { get; } = deleteId;
        public string RoomId { get; } = roomId;
        public volatile string Status = "shutting_down";
        public volatile string? Error;
        public RoomShutdownResult? Result;
        public DateTimeOffset? EndedAt;

        public JsonObject ToJson(bool withId)
        {
            var body = new JsonObject();
            if (withId)
                body["delete_id"] = DeleteId;
            body["status"] = Status;
            if (Error is { } error)
                body["error"] = error;
            body["shutdown_room"] = (Result ?? new RoomShutdownResult([], [], [], null)).ToJson();
            return body;
        }
    }

    private readonly ConcurrentDictionary<string, Deletion> _byId = new(StringComparer.Ordinal);

    /// <summary>A new deletion of the room, or null while another of it is still running.</summary>
    public Deletion? TryStart(string roomId)
    {
        DropExpired();
        lock (_byId)
        {
            if (_byId.Values.Any(d => d.RoomId == roomId && d.EndedAt is null))
                return null;
            var deletion = new Deletion(Accounts.Secrets.NewSessionId(), roomId);
            _byId[deletion.DeleteId] = deletion;
            return deletion;
        }
    }

    public void End(Deletion deletion, string status, string? error = null)
    {
        deletion.Error = error;
        deletion.EndedAt = clock.GetUtcNow();
        deletion.Status = status;
    }

    public Deletion? Find(string deleteId) => _byId.GetValueOrDefault(deleteId);

    public List<Deletion> OfRoom(string roomId) => _byId.Values.Where(d => d.RoomId == roomId).ToList();

    private void DropExpired()
    {
        var now = clock.GetUtcNow();
        foreach (var deletion in _byId.Values.Where(d => d.EndedAt is { } ended && now - ended > KeptFor))
            _byId.TryRemove(deletion.DeleteId, out _);
    }
}
