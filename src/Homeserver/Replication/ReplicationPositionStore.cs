using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// Where the main process's readers stand in each stream, recorded every second: where a worker starts, and what it
/// reads while Redis is away.
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

    public Task<Dictionary<string, long>> ReadAsync(CancellationToken ct) => db.ReadAsync(async s =>
        (await s.QueryAsync<(string Stream, long Position)>("SELECT stream, position FROM replication_positions"))
            .ToDictionary(r => r.Stream, r => r.Position, StringComparer.Ordinal), ct);
}
