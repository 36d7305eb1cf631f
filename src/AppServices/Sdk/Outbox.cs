using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.AppServices.Sdk;

/// <summary>
/// A delivery waiting in the <see cref="Outbox"/>: what, in which place of the queue, how often it was tried, when
/// next, and why it failed last.
/// </summary>
public sealed record OutboxItem(string Id, string Kind, JsonObject Payload, long Sequence, DateTimeOffset Created, int Attempts, DateTimeOffset NextAttempt, string? LastError);

/// <summary>
/// Deliveries a bridge has accepted and must not lose: each one a file in the outbox folder, written (and flushed
/// to disk) before the sender is answered, rewritten after each failed attempt with its next attempt time, removed
/// once delivered. A delivery the receiver refuses for good is moved to <c>failed/</c> for the operator, not dropped.
/// The ID is the idempotency key: enqueueing an ID already waiting changes nothing.
/// </summary>
public sealed class Outbox
{
    private readonly string _directory;
    private readonly string _failed;
    private readonly Dictionary<string, OutboxItem> _items = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private long _lastSequence;

    public Outbox(string directory)
    {
        _directory = directory;
        _failed = Path.Combine(directory, "failed");
        Directory.CreateDirectory(_failed);
        foreach (var file in Directory.EnumerateFiles(directory, "*.json"))
        {
            var item = JsonSerializer.Deserialize<OutboxItem>(File.ReadAllText(file))
                ?? throw new InvalidDataException($"{file} is not an outbox item");
            _items[item.Id] = item;
            _lastSequence = Math.Max(_lastSequence, item.Sequence);
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
                return _items.Count;
        }
    }

    /// <summary>Stores a new delivery, due now; false when one with this ID is already waiting.</summary>
    public bool Enqueue(string id, string kind, JsonObject payload, DateTimeOffset now)
    {
        lock (_lock)
        {
            if (_items.ContainsKey(id))
                return false;
            var item = new OutboxItem(id, kind, payload, ++_lastSequence, now, 0, now, null);
            Write(item);
            _items[id] = item;
            return true;
        }
    }

    /// <summary>The deliveries due at <paramref name="now"/>, in the order they were accepted.</summary>
    public IReadOnlyList<OutboxItem> Due(DateTimeOffset now)
    {
        lock (_lock)
            return _items.Values.Where(i => i.NextAttempt <= now).OrderBy(i => i.Sequence).ToList();
    }

    /// <summary>Every waiting delivery, due or not, in the order they were accepted.</summary>
    public IReadOnlyList<OutboxItem> Waiting()
    {
        lock (_lock)
            return _items.Values.OrderBy(i => i.Sequence).ToList();
    }

    /// <summary>Makes the waiting deliveries <paramref name="which"/> selects due at once (their receiver is back).</summary>
    public void RetryNow(Func<OutboxItem, bool> which, DateTimeOffset now)
    {
        lock (_lock)
            foreach (var item in _items.Values.Where(i => i.NextAttempt > now && which(i)).ToList())
            {
                var due = item with { NextAttempt = now };
                Write(due);
                _items[item.Id] = due;
            }
    }

    public void Complete(OutboxItem item)
    {
        lock (_lock)
        {
            File.Delete(PathOf(item.Id));
            _items.Remove(item.Id);
        }
    }

    /// <summary>Records a failed attempt; the next comes after <paramref name="delay"/>.</summary>
    public OutboxItem Retry(OutboxItem item, string error, DateTimeOffset now, TimeSpan delay)
    {
        lock (_lock)
        {
            var next = item with { Attempts = item.Attempts + 1, NextAttempt = now + delay, LastError = error };
            Write(next);
            _items[item.Id] = next;
            return next;
        }
    }

    /// <summary>Sets a delivery aside for good (the receiver refused it): kept under <c>failed/</c>, no more attempts.</summary>
    public void Park(OutboxItem item, string error)
    {
        lock (_lock)
        {
            var parked = item with { Attempts = item.Attempts + 1, LastError = error };
            Write(parked, Path.Combine(_failed, FileName(item.Id)));
            File.Delete(PathOf(item.Id));
            _items.Remove(item.Id);
        }
    }

    /// <summary>The deliveries set aside, for the operator.</summary>
    public IReadOnlyList<OutboxItem> Failed() => Directory.EnumerateFiles(_failed, "*.json")
        .Select(f => JsonSerializer.Deserialize<OutboxItem>(File.ReadAllText(f))!).OrderBy(i => i.Sequence).ToList();

    private string PathOf(string id) => Path.Combine(_directory, FileName(id));

    private static string FileName(string id) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)))[..40] + ".json";

    private void Write(OutboxItem item, string? path = null)
    {
        path ??= PathOf(item.Id);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            JsonSerializer.Serialize(file, item);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
