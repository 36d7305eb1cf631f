using System.Net;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: server-server API, "Content repository": media of one instance served to users of another.</summary>
public sealed class MediaFederationTests(TwoServersSqlitePostgres fixture) : IClassFixture<TwoServersSqlitePostgres>
{
    [Fact]
    public async Task Media_uploaded_on_one_server_is_downloaded_and_thumbnailed_through_the_other()
    {
        var alice = await fixture.ClientOf(0).RegisterAsync();
        var bob = await fixture.ClientOf(1).RegisterAsync();
        var png = TestImages.Png(300, 200);
        var upload = await new MediaClient(fixture.Servers[0].BaseUrl).UploadAsync(png, "image/png", alice.AccessToken, "chart.png");
        var path = MediaClient.PathOf(upload.Str("content_uri"));
        var bobs = new MediaClient(fixture.Servers[1].BaseUrl);

        using (var download = await bobs.GetAsync($"/_matrix/client/v1/media/download/{path}", bob.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, download.StatusCode);
            Assert.Equal(png, await download.Content.ReadAsByteArrayAsync());
            Assert.Equal("image/png", download.Content.Headers.ContentType!.MediaType);
            Assert.Equal("inline; filename=\"chart.png\"", download.Content.Headers.GetValues("Content-Disposition").Single());
        }
        using (var thumbnail = await bobs.GetAsync($"/_matrix/client/v1/media/thumbnail/{path}?width=96&height=96&method=crop", bob.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, thumbnail.StatusCode);
            Assert.Equal((96, 96), TestImages.PngSize(await thumbnail.Content.ReadAsByteArrayAsync()));
        }
        // The cached copy counts as new media under the freeze: only the authenticated endpoints serve it.
        using (var legacy = await bobs.GetAsync($"/_matrix/media/v3/download/{path}", null))
            Assert.Equal(HttpStatusCode.NotFound, legacy.StatusCode);

        using var unknown = await bobs.GetAsync($"/_matrix/client/v1/media/download/{fixture.Servers[0].ServerName}/noSuchMedia42", bob.AccessToken);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("M_NOT_FOUND", await MediaClient.ErrcodeAsync(unknown));
    }

    [Fact]
    public async Task The_federation_media_endpoints_answer_signed_requests_with_two_parts()
    {
        var alice = await fixture.ClientOf(0).RegisterAsync();
        var upload = await new MediaClient(fixture.Servers[0].BaseUrl).UploadAsync("plain words"u8.ToArray(), "text/plain", alice.AccessToken, "words.txt");
        var mediaId = upload.Str("content_uri").Split('/')[^1];
        var target = fixture.Servers[0];

        using (var unsigned = await new MediaClient(target.BaseUrl).GetAsync($"/_matrix/federation/v1/media/download/{mediaId}", null))
            Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);

        await using var remote = new FakeRemoteServer();
        var answer = await remote.SendAsync(target, HttpMethod.Get, $"/_matrix/federation/v1/media/download/{mediaId}");
        Assert.Equal(200, answer.Status);
        var contentType = answer.Raw.Content.Headers.ContentType!;
        Assert.Equal("multipart/mixed", contentType.MediaType);
        var boundary = contentType.Parameters.Single(p => p.Name == "boundary").Value!;
        var body = answer.Body!.GetValue<string>();
        Assert.StartsWith($"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\n", body);
        Assert.Contains("Content-Type: text/plain\r\n", body);
        Assert.Contains("Content-Disposition: inline; filename=\"words.txt\"\r\n\r\nplain words\r\n", body);
        Assert.EndsWith($"--{boundary}--\r\n", body);

        var missing = await remote.SendAsync(target, HttpMethod.Get, "/_matrix/federation/v1/media/download/doesNotExist99");
        Assert.Equal(404, missing.Status);
        Assert.Equal("M_NOT_FOUND", missing.Errcode);
        var thumbnailOfText = await remote.SendAsync(target, HttpMethod.Get, $"/_matrix/federation/v1/media/thumbnail/{mediaId}?width=32&height=32");
        Assert.Equal(400, thumbnailOfText.Status);
    }
}
