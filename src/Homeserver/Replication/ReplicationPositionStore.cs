using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// Where the main process's readers stand in each stream, recorded every second: where a worker starts, and what it
/// reads while Redis is away. With several event writers, each records its own events position too (as <c>events@name</c>).
/// </summary>
public sealed class ReplicationPositionStore(Database db)
{
    public Task RecordAsync(IReadOnlyDictionary<string, long> positions, CancellationToken ct) => db.WriteAsync(async s =>
    {
        foreach (var (stream, position) in positions)
            await s.ExecuteAsync("""
                INSERT INTO replication_positions (stream, position) VALUES (@stream, @position)
                ON CONFLICT (stream) DO UPDATE SET position = excluded.position
                """, new { stream, position });
    }, ct);

    public Task<Dictionary<string, long>> ReadAsync(CancellationToken ct) => ReadWhereAsync("stream NOT LIKE '%@%'", ct);

    /// <summary>Several event writers: where each recorded it has committed everything of its own, by writer.</summary>
    public async Task<Dictionary<string, long>> ReadEventWritersAsync(CancellationToken ct) =>
        (await ReadWhereAsync($"stream LIKE '{Storage.StreamPositions.SharedStream}@%'", ct))
            .ToDictionary(r => r.Key[(r.Key.IndexOf('@') + 1)..], r => r.Value, StringComparer.Ordinal);

    /// <summary>An event writer recording where it has committed everything of its own.</summary>
    public Task RecordEventWriterAsync(string writer, long position, CancellationToken ct) =>
        RecordAsync(new Dictionary<string, long> { [$"{Storage.StreamPositions.SharedStream}@{writer}"] = position }, ct);

    private Task<Dictionary<string, long>> ReadWhereAsync(string condition, CancellationToken ct) => db.ReadAsync(async s =>
        (await s.QueryAsync<(string Stream, long Position)>($"SELECT stream, position FROM replication_positions WHERE {condition}"))
            .ToDictionary(r => r.Stream, r => r.Position, StringComparer.Ordinal), ct);
}
