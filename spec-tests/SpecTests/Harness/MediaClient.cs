using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace Matrix.SpecTests.Harness;

/// <summary>Raw media requests: binary bodies and full responses (headers matter for media), beside the JSON client.</summary>
public sealed class MediaClient(string baseUrl)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromMinutes(10) };

    public string BaseUrl => baseUrl;

    public async Task<MatrixResponse> UploadAsync(HttpContent body, string? token, string? fileName = null, string path = "/_matrix/media/v3/upload",
        HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Post, baseUrl + path + (fileName is null ? "" : "?filename=" + Uri.EscapeDataString(fileName)))
        {
            Content = body,
        };
        if (token is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return new MatrixResponse((int)response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text), response);
    }

    public Task<MatrixResponse> UploadAsync(byte[] bytes, string? contentType, string? token, string? fileName = null) =>
        UploadAsync(Content(bytes, contentType), token, fileName);

    public static ByteArrayContent Content(byte[] bytes, string? contentType)
    {
        var content = new ByteArrayContent(bytes);
        if (contentType is not null)
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return content;
    }

    /// <summary>A GET whose whole response is kept (bytes and headers); the caller disposes it.</summary>
    public async Task<HttpResponseMessage> GetAsync(string path, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, baseUrl + path);
        if (token is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await Http.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    public static async Task<string?> ErrcodeAsync(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())?["errcode"]?.GetValue<string>();

    /// <summary>"server/mediaId" of an mxc URI, as the download paths take it.</summary>
    public static string PathOf(string mxc) => mxc["mxc://".Length..];
}
