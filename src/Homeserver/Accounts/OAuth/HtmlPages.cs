using System.Net;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>How the OAuth pages are written and framed: plain, accessible HTML without scripts, never cached or framed.</summary>
public static class HtmlPages
{
    public static string Html(string text) => WebUtility.HtmlEncode(text);

    public static string Page(string title, string body) =>
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        + $"<title>{Html(title)}</title><style>body{{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}"
        + "label{display:block;margin-top:.75rem}input[type=text],input[type=password]{width:100%;padding:.4rem}"
        + "button{margin:.75rem .5rem 0 0;padding:.4rem 1rem}.error{color:#a00}</style></head>"
        + $"<body><main><h1>{Html(title)}</h1>{body}</main></body></html>";

    public static string Form(string action, string csrf, string fields, params (string Name, string Value, string Label)[] buttons) =>
        $"<form method=\"post\" action=\"{Html(action)}\"><input type=\"hidden\" name=\"{Csrf.FieldName}\" value=\"{Html(csrf)}\">{fields}"
        + string.Concat(buttons.Select(b => $"<button type=\"submit\" name=\"{Html(b.Name)}\" value=\"{Html(b.Value)}\">{Html(b.Label)}</button>"))
        + "</form>";

    /// <summary>A labelled input; required unless it has an initial value to keep.</summary>
    public static string Field(string name, string label, string type, string autocomplete, string? value = null) =>
        $"<label for=\"{name}\">{Html(label)}</label><input type=\"{type}\" id=\"{name}\" name=\"{name}\" autocomplete=\"{autocomplete}\""
        + (value is null ? " required>" : $" value=\"{Html(value)}\">");

    public static string Hidden(string name, string value) => $"<input type=\"hidden\" name=\"{Html(name)}\" value=\"{Html(value)}\">";

    public static string Error(string? message) => message is null ? "" : $"<p class=\"error\" role=\"alert\">{Html(message)}</p>";

    public static Task WriteAsync(HttpContext context, string html, int status = 200) => HtmlResponse.WriteAsync(context, html, status);

    /// <summary>Maps a page: a refusal is an error page for the person at the browser, not JSON.</summary>
    public static void MapPage(this IEndpointRouteBuilder app, string method, string path, RequestDelegate handler) =>
        app.MapMethods(path, [method], async context =>
        {
            try
            {
                await handler(context);
            }
            catch (MatrixException e) when (!context.Response.HasStarted)
            {
                await WriteAsync(context, Page("Something went wrong", $"<p>{Html(e.Message)}</p>"), e.Status);
            }
        });

    public static void Redirect(HttpContext context, string url)
    {
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Redirect(url);
    }
}
