using Matrix.Federation.Identifiers;

namespace Matrix.Federation.Tests;

/// <summary>The appendix's identifier grammars: server names, user IDs, room IDs.</summary>
public sealed class IdentifierTests
{
    [Theory]
    [InlineData("matrix.org", "matrix.org", null)]
    [InlineData("matrix.org:8888", "matrix.org", 8888)]
    [InlineData("1.2.3.4", "1.2.3.4", null)]
    [InlineData("1.2.3.4:1234", "1.2.3.4", 1234)]
    [InlineData("[1234:5678::abcd]", "[1234:5678::abcd]", null)]
    [InlineData("[1234:5678::abcd]:5678", "[1234:5678::abcd]", 5678)]
    [InlineData("localhost", "localhost", null)]
    public void Valid_server_names(string text, string host, int? port)
    {
        Assert.True(ServerName.TryParse(text, out var name));
        Assert.Equal(host, name.Host);
        Assert.Equal(port, name.Port);
    }

    [Theory]
    [InlineData("")]
    [InlineData("matrix.org:")]
    [InlineData("matrix.org:abc")]
    [InlineData("matrix.org:123456")]
    [InlineData("matrix.org:99999")]
    [InlineData("[1234:5678::abcd")]
    [InlineData("[not-ipv6]")]
    [InlineData("under_score.org")]
    [InlineData("spa ce.org")]
    public void Invalid_server_names(string text)
    {
        Assert.False(ServerName.TryParse(text, out _));
    }

    [Fact]
    public void User_ids_parse_into_localpart_and_server()
    {
        Assert.True(UserId.TryParse("@alice:example.org:8448", out var user));
        Assert.Equal("alice", user.Localpart);
        Assert.Equal("example.org:8448", user.Server.Value);
        Assert.True(UserId.TryParse("@Historical!User:example.org", out _));
        Assert.False(UserId.TryParse("alice:example.org", out _));
        Assert.False(UserId.TryParse("@:example.org", out _));
        Assert.False(UserId.TryParse("@alice", out _));
        Assert.False(UserId.TryParse("@al ice:example.org", out _));
        Assert.False(UserId.TryParse("@" + new string('a', 250) + ":example.org", out _));
    }

    [Theory]
    [InlineData("alice", true)]
    [InlineData("a.b_c=d-e/f+g", true)]
    [InlineData("Alice", false)]
    [InlineData("al!ce", false)]
    [InlineData("", false)]
    public void New_localparts_use_the_strict_grammar(string localpart, bool valid)
    {
        Assert.Equal(valid, UserId.IsValidNewLocalpart(localpart));
    }

    [Theory]
    [InlineData("!abc:example.org", true)]
    [InlineData("!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM", true)]
    [InlineData("!:example.org", false)]
    [InlineData("#alias:example.org", false)]
    [InlineData("!abc:bad_server", false)]
    [InlineData("!", false)]
    public void Room_ids_with_and_without_server(string text, bool valid)
    {
        Assert.Equal(valid, RoomId.TryParse(text, out _));
    }
}
