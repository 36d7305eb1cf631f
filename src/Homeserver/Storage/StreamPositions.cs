namespace Matrix.Homeserver.Storage;

/// <summary>
/// Named, persistent stream counters (events, account_data, receipts, state_groups). Taking a position inside a write
/// transaction locks its row until commit, so positions become visible in order and sync never skips one.
/// </summary>
public sealed class StreamPositions
{
    public Task<long> NextAsync(DbSession s, string stream) =>
        s.ExecuteScalarAsync<long>("UPDATE stream_positions SET position = position + 1 WHERE stream = @stream RETURNING position", new { stream });

    public Task<long> CurrentAsync(DbSession s, string stream) =>
        s.ExecuteScalarAsync<long>("SELECT position FROM stream_positions WHERE stream = @stream", new { stream });
}
