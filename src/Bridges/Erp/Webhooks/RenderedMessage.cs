using System.Net;
using System.Text.Json.Nodes;

namespace Matrix.Bridges.Erp;

/// <summary>A message to post: its plain body, its HTML body and its msgtype.</summary>
public sealed record RenderedMessage(string Plain, string Html, string MsgType = "m.text")
{
    public static RenderedMessage FromPlain(string plain, string msgType = "m.text") =>
        new(plain, WebUtility.HtmlEncode(plain).Replace("\n", "<br>"), msgType);

    public JsonObject ToContent() => new()
    {
        ["msgtype"] = MsgType,
        ["body"] = Plain,
        ["format"] = "org.matrix.custom.html",
        ["formatted_body"] = Html,
        ["m.mentions"] = new JsonObject(),
    };
}
