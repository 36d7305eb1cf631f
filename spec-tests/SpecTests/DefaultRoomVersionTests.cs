namespace Matrix.SpecTests;

/// <summary>The operator's <c>default_room_version</c>: rooms created without a version get it, and capabilities say so.</summary>
public sealed class DefaultRoomVersionTests() : Harness.ServerFixture("sqlite", "default_room_version: \"10\"\n")
{
    [Fact]
    public async Task Rooms_without_a_version_get_the_configured_default()
    {
        var user = await Client.RegisterAsync();
        var capabilities = await Client.GetAsync("/_matrix/client/v3/capabilities", user.AccessToken);
        Assert.Equal("10", capabilities.Body!["capabilities"]!["m.room_versions"]!["default"]!.GetValue<string>());

        var byDefault = await RoomTests.CreateRoomAsync(Client, user, new { name = "default" });
        var asked = await RoomTests.CreateRoomAsync(Client, user, new { room_version = "12" });
        Assert.Equal("10", (await CreateContentAsync(byDefault, user.AccessToken)).Str("room_version"));
        Assert.Equal("12", (await CreateContentAsync(asked, user.AccessToken)).Str("room_version"));
    }

    private Task<Harness.MatrixResponse> CreateContentAsync(string roomId, string token) =>
        Client.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.create/", token);
}
