using System.Text.Json.Nodes;
using Jint;
using Jint.Native;
using Jint.Native.Json;
using Jint.Runtime;

namespace Matrix.Bridges.Erp;

/// <summary>The limits every transformation function runs under (<c>transforms:</c> in the config).</summary>
public sealed record TransformLimits(TimeSpan Timeout, long MemoryBytes, int MaxRecursion, int MaxStatements);

/// <summary>
/// A JavaScript transformation function for a hook's payload, run by Jint in a sandbox: no CLR access (it is never
/// allowed), no modules, files, network or timers (Jint has none unless given), strict mode, and limits on time,
/// memory, recursion depth and statements; each run gets a fresh engine, so runs share nothing. The script sees the
/// payload as <c>data</c> and sets <c>result</c>: a string (the message), or <c>{ plain, html, msgtype, empty }</c>
/// where <c>empty: true</c> posts nothing. Leaving <c>result</c> unset also posts nothing.
/// </summary>
public sealed class PayloadTransform
{
    private readonly Prepared<Acornima.Ast.Script> _script;
    private readonly TransformLimits _limits;

    private PayloadTransform(Prepared<Acornima.Ast.Script> script, TransformLimits limits)
    {
        _script = script;
        _limits = limits;
    }

    /// <summary>Parses the function once; a syntax error is a <see cref="FormatException"/> naming where.</summary>
    public static PayloadTransform Parse(string code, TransformLimits limits)
    {
        try
        {
            return new PayloadTransform(Engine.PrepareScript(code, options: new ScriptPreparationOptions { ParsingOptions = ScriptParsingOptions.Default with { Tolerant = false } }), limits);
        }
        catch (Exception e) when (e is ScriptPreparationException or Acornima.ParseErrorException or JavaScriptException)
        {
            throw new FormatException($"the transformation function does not parse: {e.Message}");
        }
    }

    /// <summary>The message for a payload; null when the function posts nothing. A failing function throws <see cref="TransformException"/>.</summary>
    public RenderedMessage? Run(JsonNode payload)
    {
        using var engine = new Engine(options => options
            .Strict()
            .TimeoutInterval(_limits.Timeout)
            .LimitMemory(_limits.MemoryBytes)
            .LimitRecursion(_limits.MaxRecursion)
            .MaxStatements(_limits.MaxStatements)
            .DisableStringCompilation());
        JsValue result;
        try
        {
            engine.SetValue("data", new JsonParser(engine).Parse(payload.ToJsonString()));
            engine.Execute("var result;");
            engine.Execute(_script);
            result = engine.GetValue("result");
            if (result.IsUndefined() || result.IsNull())
                return null;
            if (result.IsString())
                return RenderedMessage.FromPlain(result.AsString());
            var json = new JsonSerializer(engine).Serialize(result).ToString();
            return FromObject(JsonNode.Parse(json) as JsonObject ?? throw new TransformException("result is neither a string nor an object"));
        }
        catch (Exception e) when (e is JavaScriptException or MemoryLimitExceededException or RecursionDepthOverflowException
            or StatementsCountOverflowException or TimeoutException or ExecutionCanceledException)
        {
            throw new TransformException(e switch
            {
                TimeoutException => $"took longer than {_limits.Timeout.TotalMilliseconds:0} ms",
                MemoryLimitExceededException => $"used more than {_limits.MemoryBytes} bytes",
                RecursionDepthOverflowException => $"recursed deeper than {_limits.MaxRecursion}",
                StatementsCountOverflowException => $"ran more than {_limits.MaxStatements} statements",
                _ => e.Message,
            });
        }
    }

    private static RenderedMessage? FromObject(JsonObject result)
    {
        if (result["empty"] is JsonValue empty && empty.TryGetValue<bool>(out var isEmpty) && isEmpty)
            return null;
        var plain = Text(result, "plain") ?? throw new TransformException("result.plain is missing");
        var msgtype = Text(result, "msgtype") ?? "m.text";
        if (msgtype is not ("m.text" or "m.notice" or "m.emote"))
            throw new TransformException("result.msgtype must be m.text, m.notice or m.emote");
        return Text(result, "html") is { } html ? new RenderedMessage(plain, html, msgtype) : RenderedMessage.FromPlain(plain, msgtype);
    }

    private static string? Text(JsonObject json, string key) => json[key] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
}

/// <summary>A transformation function failed (threw, or ran past a limit); the message says how, never with the payload.</summary>
public sealed class TransformException(string message) : Exception(message);
