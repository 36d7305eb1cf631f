using System.Collections.Concurrent;

namespace Matrix.Homeserver.Admin;

/// <summary>One background job the admin API started (a room deletion, a history purge) and how it stands.</summary>
public sealed class AdminTask(string kind, string id, string roomId, string status, DateTimeOffset startedAt)
{
    public string Kind { get; } = kind;
    public DateTimeOffset StartedAt { get; } = startedAt;
    public string Id { get; } = id;
    public string RoomId { get; } = roomId;
    public volatile string Status = status;
    public volatile string? Error;
    /// <summary>What the job produced (a deletion's shutdown result), once known.</summary>
    public volatile object? Result;
    public DateTimeOffset? EndedAt;
}

/// <summary>
/// The admin API's background jobs, kept in memory for a day after they end (as Synapse keeps them), so their status
/// can be asked by ID or by room. One job of a kind per room runs at a time.
/// </summary>
public sealed class AdminTasks(TimeProvider clock)
{
    private static readonly TimeSpan KeptFor = TimeSpan.FromDays(1);
    private readonly ConcurrentDictionary<string, AdminTask> _byId = new(StringComparer.Ordinal);

    /// <summary>A new job on the room, or null while another of its kind is still running there.</summary>
    public AdminTask? TryStart(string kind, string roomId, string status)
    {
        DropExpired();
        lock (_byId)
        {
            if (_byId.Values.Any(t => t.Kind == kind && t.RoomId == roomId && t.EndedAt is null))
                return null;
            var task = new AdminTask(kind, Accounts.Secrets.NewSessionId(), roomId, status, clock.GetUtcNow());
            _byId[task.Id] = task;
            return task;
        }
    }

    /// <summary>Runs the job in the background, ending it complete, or failed with its error (a client's error, or "Internal error").</summary>
    public void Run(AdminTask task, Func<AdminTask, Task> work, ILogger logger)
    {
        _ = Task.Run(async () =>
        {
            try
            {
                await work(task);
                End(task, "complete", null);
            }
            catch (Exception e)
            {
                logger.LogError(e, "The admin job {Kind} of {RoomId} failed", task.Kind, task.RoomId);
                End(task, "failed", e is Http.MatrixException ? e.Message : "Internal error");
            }
        });
    }

    public AdminTask? Find(string kind, string id) => _byId.TryGetValue(id, out var task) && task.Kind == kind ? task : null;

    public List<AdminTask> All() => _byId.Values.OrderBy(t => t.StartedAt).ToList();

    public List<AdminTask> OfRoom(string kind, string roomId) => _byId.Values.Where(t => t.Kind == kind && t.RoomId == roomId).ToList();

    private void End(AdminTask task, string status, string? error)
    {
        task.Error = error;
        task.EndedAt = clock.GetUtcNow();
        task.Status = status;
    }

    private void DropExpired()
    {
        var now = clock.GetUtcNow();
        foreach (var task in _byId.Values.Where(t => t.EndedAt is { } ended && now - ended > KeptFor))
            _byId.TryRemove(task.Id, out _);
    }
}
