namespace Matrix.Homeserver.Storage;

/// <summary>
/// The reads several sources need, gathered for one round trip (<see cref="Database.ReadAllAsync"/>), each once. A
/// sync woken by a message mostly finds everything in memory: then nothing at all is allocated for the batch.
/// </summary>
public sealed class ReadBatch
{
    private List<SqlRead>? _reads;

    public IReadOnlyList<SqlRead> Reads => _reads ?? (IReadOnlyList<SqlRead>)[];

    public ReadBatch Add(SqlRead? read)
    {
        if (read is not null && !(_reads ??= []).Contains(read))
            _reads.Add(read);
        return this;
    }

    public ReadBatch AddAll<TRead>(IReadOnlyList<TRead> reads) where TRead : SqlRead
    {
        for (var i = 0; i < reads.Count; i++)
            Add(reads[i]);
        return this;
    }
}
