using System.Text;
using Dapper;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Search;

public sealed class SearchHit
{
    public string EventId { get; init; } = "";
    public string RoomId { get; init; } = "";
    public long StreamOrdering { get; init; }
    public double Score { get; init; }
}

/// <summary>
/// The full-text index of message bodies, room names and topics: PostgreSQL <c>tsvector</c> (English stemming) with a
/// GIN index, or an SQLite FTS5 table (Porter stemming). Terms match as words, each a prefix, all required.
/// </summary>
public sealed class SearchStore(Database database)
{
    /// <summary>The searchable keys and the event type each belongs to.</summary>
    public static readonly IReadOnlyDictionary<string, string> Keys = new Dictionary<string, string>
    {
        ["content.body"] = "m.room.message",
        ["content.name"] = "m.room.name",
        ["content.topic"] = "m.room.topic",
    };

    private bool Postgres => database.Engine == DatabaseEngine.Postgres;

    public Task IndexAsync(DbSession s, string eventId, string roomId, string sender, string key, long streamOrdering, string body) =>
        s.DeferAsync(Postgres
            ? """
              INSERT INTO event_search (event_id, room_id, sender, key, stream_ordering, body, vector)
              VALUES (@eventId, @roomId, @sender, @key, @streamOrdering, @body, to_tsvector('english', @body))
              ON CONFLICT DO NOTHING
              """
            : "INSERT INTO event_search (body, event_id, room_id, sender, key, stream_ordering) VALUES (@body, @eventId, @roomId, @sender, @key, @streamOrdering)",
            new { eventId, roomId, sender, key, streamOrdering, body });

    public Task RemoveAsync(DbSession s, string eventId) => s.ExecuteAsync("DELETE FROM event_search WHERE event_id = @eventId", new { eventId });

    /// <summary>The words of a search term, as the query uses them (and clients highlight them).</summary>
    public static List<string> Words(string term) =>
        term.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(w => new string(w.Where(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '\'').ToArray()).Trim('-', '\''))
            .Where(w => w.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).Take(20).ToList();

    /// <summary>
    /// Matches in the given rooms and keys, newest first (<paramref name="byRank"/> false) or best first; with the
    /// total count. <paramref name="before"/> pages by stream position (recent), <paramref name="offset"/> by rank.
    /// </summary>
    public async Task<(List<SearchHit> Hits, long Count)> SearchAsync(DbSession s, IReadOnlyCollection<string> roomIds, IReadOnlyCollection<string> keys,
        List<string> words, bool byRank, long before, int offset, int limit)
    {
        var args = new SqlArgs(new { before, offset, limit });
        var rooms = SqlList.In(args, "r", roomIds);
        var keyList = SqlList.In(args, "k", keys);
        string match, rank;
        if (Postgres)
        {
            // Each word a prefix, all required; the words are quoted lexemes, so nothing the user types is an operator.
            args.Add("query", string.Join(" & ", words.Select(w => "'" + w.Replace("'", "''") + "':*")));
            match = "vector @@ to_tsquery('english', @query)";
            rank = "ts_rank_cd(vector, to_tsquery('english', @query))";
        }
        else
        {
            args.Add("query", string.Join(" ", words.Select(w => "\"" + w.Replace("\"", "\"\"") + "\"*")));
            match = "event_search MATCH @query";
            rank = "-bm25(event_search)";
        }
        var where = $"{match} AND room_id IN {rooms} AND key IN {keyList}";
        var order = byRank ? "score DESC, stream_ordering DESC" : "stream_ordering DESC";
        var page = byRank ? "OFFSET @offset" : "";
        // The matches first (the full-text index finds them), then order and page them: left to itself, PostgreSQL
        // walks the room's whole history newest first, testing every message, whenever few messages match.
        var hits = (await s.QueryAsync<SearchHit>($"""
            WITH matches AS {(Postgres ? "MATERIALIZED" : "")} (
                SELECT event_id, room_id, CAST(stream_ordering AS BIGINT) AS stream_ordering, CAST({rank} AS DOUBLE PRECISION) AS score
                FROM event_search WHERE {where})
            SELECT event_id, room_id, stream_ordering, score FROM matches
            {(byRank ? "" : "WHERE stream_ordering < @before")}
            ORDER BY {order} LIMIT @limit {page}
            """, args)).ToList();
        var count = await s.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM event_search WHERE {where}", args);
        return (hits, count);
    }
}
