using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Tests;

public sealed class BatchNamesTests
{
    [Fact]
    public void A_statements_parameters_are_renamed_after_its_place_in_the_batch()
    {
        Assert.Equal("SELECT @d3_roomid, @d3_b FROM t WHERE v @@ q AND e = 'x@y'",
            BatchNames.Statement("SELECT @roomId, @B FROM t WHERE v @@ q AND e = 'x@y'", 3));
        Assert.Equal("d3_roomid", BatchNames.Parameter("roomId", 3));
    }

    [Fact]
    public void A_statement_seen_again_is_not_renamed_again_unless_it_is_long()
    {
        const string sql = "SELECT 1 WHERE @a = @b";
        Assert.Same(BatchNames.Statement(sql, 0), BatchNames.Statement(sql, 0));
        Assert.NotEqual(BatchNames.Statement(sql, 0), BatchNames.Statement(sql, 1));

        var list = "SELECT 1 WHERE x IN (" + string.Join(", ", Enumerable.Range(0, 500).Select(i => $"@id{i}")) + ")";
        Assert.Equal(list.Replace("@id", "@d2_id"), BatchNames.Statement(list, 2));
        Assert.NotSame(BatchNames.Statement(list, 2), BatchNames.Statement(list, 2));
    }

    [Fact]
    public void A_statement_for_postgresql_numbers_its_parameters_in_order_of_first_use()
    {
        var statement = BatchNames.Positional("SELECT @roomId, @B FROM t WHERE v @@ q AND e = 'x@y' AND r = @ROOMID");
        Assert.Equal("SELECT $1, $2 FROM t WHERE v @@ q AND e = 'x@y' AND r = $1", statement.Text);
        Assert.Equal(["roomId", "B"], statement.Names);
        Assert.Same(statement, BatchNames.Positional("SELECT @roomId, @B FROM t WHERE v @@ q AND e = 'x@y' AND r = @ROOMID"));
    }
}
