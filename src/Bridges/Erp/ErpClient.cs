using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Matrix.Bridges.Erp;

/// <summary>An ERP system's answer: status, and the body as JSON when it is JSON.</summary>
public sealed record ErpAnswer(int Status, JsonNode? Json, string Text)
{
    public bool IsSuccess => Status is >= 200 and < 300;
    /// <summary>A refusal that trying again will not change (4xx other than timeout and rate limit).</summary>
    public bool IsPermanentFailure => Status is >= 400 and < 500 and not (408 or 425 or 429);
}

/// <summary>Calls one ERP system's REST API with its credentials (bearer token or basic), JSON in and out.</summary>
public sealed class ErpClient(HttpClient http, ErpBridgeConfig.SystemSection system)
{
    public string DisplayName => system.DisplayName.Length > 0 ? system.DisplayName : system.Id;

    /// <param name="idempotencyKey">sent as <c>Idempotency-Key</c>, the same on every retry of one delivery</param>
    public async Task<ErpAnswer> SendAsync(string method, string path, JsonNode? body, string? idempotencyKey, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), system.BaseUrl.TrimEnd('/') + path);
        if (system.BearerToken is { Length: > 0 } token)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        else if (system.Username is { Length: > 0 } user)
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{system.Password}")));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (idempotencyKey is not null)
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        if (body is not null)
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        using var response = await http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        JsonNode? json = null;
        try
        {
            json = text.Length > 0 ? JsonNode.Parse(text) : null;
        }
        catch (System.Text.Json.JsonException)
        {
        }
        return new ErpAnswer((int)response.StatusCode, json, text);
    }
}
