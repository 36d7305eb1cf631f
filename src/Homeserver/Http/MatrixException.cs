using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Http;

/// <summary>The one error type endpoints throw; <see cref="ErrorMiddleware"/> turns it into the spec's <c>{errcode, error}</c>.</summary>
public class MatrixException(int status, string errcode, string message, JsonObject? extra = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Errcode { get; } = errcode;
    public JsonObject? Extra { get; } = extra;

    public virtual JsonObject ToJson()
    {
        var body = new JsonObject { ["errcode"] = Errcode, ["error"] = Message };
        if (Extra is not null)
            foreach (var (key, value) in Extra)
                body[key] = value?.DeepClone();
        return body;
    }

    public static MatrixException BadJson(string message) => new(400, "M_BAD_JSON", message);
    public static MatrixException NotJson(string message = "Content not JSON.") => new(400, "M_NOT_JSON", message);
    public static MatrixException MissingParam(string name) => new(400, "M_MISSING_PARAM", $"Missing parameter '{name}'.");
    public static MatrixException InvalidParam(string message) => new(400, "M_INVALID_PARAM", message);
    public static MatrixException Forbidden(string message) => new(403, "M_FORBIDDEN", message);
    public static MatrixException NotFound(string message) => new(404, "M_NOT_FOUND", message);
    public static MatrixException Unrecognized(int status = 404) => new(status, "M_UNRECOGNIZED", "Unrecognized request");
    public static MatrixException TooLarge(string message) => new(413, "M_TOO_LARGE", message);
    public static MatrixException MissingToken() => new(401, "M_MISSING_TOKEN", "Missing access token.");

    public static MatrixException UnknownToken(bool softLogout) =>
        new(401, "M_UNKNOWN_TOKEN", softLogout ? "Access token has expired." : "Unknown access token.",
            new JsonObject { ["soft_logout"] = softLogout });

    public static MatrixException LimitExceeded(long retryAfterMs) =>
        new(429, "M_LIMIT_EXCEEDED", "Too many requests.", new JsonObject { ["retry_after_ms"] = retryAfterMs });
}
