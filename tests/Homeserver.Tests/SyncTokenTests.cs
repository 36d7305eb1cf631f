using Matrix.Homeserver.Http;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Tests;

public sealed class SyncTokenTests
{
    [Fact]
    public void A_token_reads_back_as_the_positions_it_was_written_from()
    {
        var token = new SyncToken(-42, 1, 22, 333, 4_444, 55_555, long.MaxValue);
        Assert.Equal("s-42_1_22_333_4444_55555_9223372036854775807", token.ToString());
        Assert.Equal(token, SyncToken.Parse(token.ToString(), "since"));
    }

    [Fact]
    public void Tokens_of_older_versions_read_their_missing_positions_as_zero()
    {
        Assert.Equal(new SyncToken(7), SyncToken.Parse("s7", "from"));
        Assert.Equal(new SyncToken(7, 3, 2), SyncToken.Parse("s7_3_2", "from"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("s")]
    [InlineData("t5")]
    [InlineData("5_1")]
    [InlineData("s5_")]
    [InlineData("s5__1")]
    [InlineData("s5_-1")]
    [InlineData("s 5")]
    [InlineData("s5_1_2_3_4_5_6_7")]
    [InlineData("s99999999999999999999")]
    public void Anything_else_is_refused_as_an_invalid_parameter(string text)
    {
        var error = Assert.Throws<MatrixException>(() => SyncToken.Parse(text, "since"));
        Assert.Equal("M_INVALID_PARAM", error.Errcode);
        Assert.Contains("since", error.Message);
    }
}
