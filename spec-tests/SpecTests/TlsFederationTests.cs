using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Federation over real TLS (certificates checked against a test CA given as <c>federation.trusted_ca_file</c>), with listeners split by resource.</summary>
public sealed class TlsFederationTests(TwoServersOverTls fixture) : IClassFixture<TwoServersOverTls>
{
    private MatrixClient A => fixture.ClientOf(0);
    private MatrixClient B => fixture.ClientOf(1);

    [Fact]
    public async Task Servers_join_and_talk_over_https_and_listeners_serve_only_their_resources()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat", name = "Over TLS" });
        var join = await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?via={Uri.EscapeDataString(fixture.Servers[0].ServerName)}", new { }, bob.AccessToken);
        Assert.True(join.Status == 200, join.ToString());
        await RoomTests.SendAsync(B, bob, roomId, "over https");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var messages = await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=5", alice.AccessToken);
            if (messages.Body!["chunk"]!.AsArray().Any(e => e!["content"]?["body"]?.GetValue<string>() == "over https"))
                break;
            Assert.True(DateTime.UtcNow < deadline, "the message never crossed");
            await Task.Delay(200);
        }

        // The client listener does not serve federation, and the federation listener does not serve clients.
        Assert.Equal("M_UNRECOGNIZED", (await A.GetAsync("/_matrix/key/v2/server")).Errcode);
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var http = new HttpClient(handler);
        var federationBase = $"https://{fixture.Servers[0].ServerName}";
        Assert.Equal(200, (int)(await http.GetAsync($"{federationBase}/_matrix/key/v2/server")).StatusCode);
        Assert.Equal(404, (int)(await http.GetAsync($"{federationBase}/_matrix/client/versions")).StatusCode);

        // Servers before the authenticated federation media endpoints fetch media with the legacy download, on the
        // federation port: served there when legacy media access is on.
        var upload = await A.SendAsync(HttpMethod.Post, "/_matrix/media/v3/upload?filename=a.txt", "federated bytes", alice.AccessToken, "text/plain");
        var mediaPath = new Uri(upload.Str("content_uri")).AbsolutePath;
        var legacy = await http.GetAsync($"{federationBase}/_matrix/media/v3/download/{fixture.Servers[0].ServerName}{mediaPath}");
        Assert.Equal(200, (int)legacy.StatusCode);
        Assert.Equal("federated bytes", await legacy.Content.ReadAsStringAsync());
        Assert.Equal(404, (int)(await http.GetAsync($"{federationBase}/_matrix/media/v3/config")).StatusCode);
    }
}
