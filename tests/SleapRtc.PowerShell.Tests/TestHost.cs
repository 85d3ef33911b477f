using System.Collections.Concurrent;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;
using System.Text;

namespace SleapRtc.PowerShell.Tests;

/// <summary>A PowerShell host for tests: its UI answers prompts from a queue and records what it was shown.</summary>
public sealed class TestHost : PSHost
{
    private readonly TestHostUserInterface _ui;

    /// <param name="consoleWidth">Columns of the console: what Out-Host formats tables to (users' terminals are often 80).</param>
    public TestHost(int consoleWidth = 120) => _ui = new TestHostUserInterface(consoleWidth);

    public TestHostUserInterface TestUI => _ui;
    public override PSHostUserInterface UI => _ui;
    public override string Name => "SleapRtcTestHost";
    public override Version Version { get; } = new(1, 0);
    public override Guid InstanceId { get; } = Guid.NewGuid();
    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
    public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;

    public override void SetShouldExit(int exitCode) { }
    public override void EnterNestedPrompt() => throw new NotSupportedException("The test host has no nested prompt.");
    public override void ExitNestedPrompt() => throw new NotSupportedException("The test host has no nested prompt.");
    public override void NotifyBeginApplication() { }
    public override void NotifyEndApplication() { }
}

/// <summary>Answers ReadLine / Prompt / PromptForChoice from <see cref="Answers"/>; records every line written.</summary>
public sealed class TestHostUserInterface : PSHostUserInterface
{
    private readonly StringBuilder _transcript = new();
    private readonly object _gate = new();

    /// <summary>Queued answers, consumed in order by any prompt. A prompt with nothing queued fails loudly.</summary>
    public ConcurrentQueue<string> Answers { get; } = new();

    /// <summary>The prompt captions/messages shown, in order.</summary>
    public ConcurrentQueue<string> PromptsShown { get; } = new();

    public string Transcript
    {
        get { lock (_gate) return _transcript.ToString(); }
    }

    public TestHostUserInterface(int consoleWidth = 120) => RawUI = new TestRawUserInterface(consoleWidth);

    public override PSHostRawUserInterface RawUI { get; }

    public override string ReadLine() => NextAnswer("ReadLine");

    public override SecureString ReadLineAsSecureString()
    {
        var secure = new SecureString();
        foreach (var c in NextAnswer("ReadLineAsSecureString")) secure.AppendChar(c);
        secure.MakeReadOnly();
        return secure;
    }

    public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions)
    {
        PromptsShown.Enqueue($"{caption}|{message}");
        var result = new Dictionary<string, PSObject>();
        foreach (var field in descriptions) result[field.Name] = new PSObject(NextAnswer($"Prompt '{field.Name}'"));
        return result;
    }

    public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice)
    {
        PromptsShown.Enqueue($"{caption}|{message}");
        var answer = NextAnswer($"PromptForChoice '{caption}'");
        for (var i = 0; i < choices.Count; i++)
        {
            var label = choices[i].Label.Replace("&", "");
            var hotkey = choices[i].Label.IndexOf('&') is var amp and >= 0 && amp + 1 < choices[i].Label.Length
                ? choices[i].Label[amp + 1].ToString() : null;
            if (label.Equals(answer, StringComparison.OrdinalIgnoreCase) || (hotkey is not null && hotkey.Equals(answer, StringComparison.OrdinalIgnoreCase)))
                return i;
        }
        return answer.Length == 0 ? defaultChoice : throw new InvalidOperationException($"Answer '{answer}' matches no choice of '{caption}'.");
    }

    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) =>
        throw new NotSupportedException("The test host does not prompt for credentials.");

    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName,
        PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) =>
        throw new NotSupportedException("The test host does not prompt for credentials.");

    public override void Write(string value) => Append(value);
    public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Append(value);
    public override void WriteLine(string value) => Append(value + "\n");
    public override void WriteErrorLine(string value) => Append("ERROR: " + value + "\n");
    public override void WriteDebugLine(string message) => Append("DEBUG: " + message + "\n");
    public override void WriteVerboseLine(string message) => Append("VERBOSE: " + message + "\n");
    public override void WriteWarningLine(string message) => Append("WARNING: " + message + "\n");
    public override void WriteProgress(long sourceId, ProgressRecord record) { }

    private string NextAnswer(string what)
    {
        if (Answers.TryDequeue(out var answer))
        {
            Append(answer + "\n");
            return answer;
        }
        throw new InvalidOperationException($"The test host has no answer queued for {what}.");
    }

    private void Append(string text)
    {
        lock (_gate) _transcript.Append(text);
    }
}

/// <summary>A fixed console (120x50 unless told), enough for the formatting engine.</summary>
internal sealed class TestRawUserInterface : PSHostRawUserInterface
{
    public TestRawUserInterface(int width)
    {
        BufferSize = new(width, 50);
        WindowSize = new(width, 50);
        MaxPhysicalWindowSize = new(width, 50);
        MaxWindowSize = new(width, 50);
    }

    public override ConsoleColor BackgroundColor { get; set; } = ConsoleColor.Black;
    public override ConsoleColor ForegroundColor { get; set; } = ConsoleColor.White;
    public override Size BufferSize { get; set; }
    public override Coordinates CursorPosition { get; set; }
    public override int CursorSize { get; set; } = 1;
    public override bool KeyAvailable => false;
    public override Size MaxPhysicalWindowSize { get; }
    public override Size MaxWindowSize { get; }
    public override Coordinates WindowPosition { get; set; }
    public override Size WindowSize { get; set; }
    public override string WindowTitle { get; set; } = "";

    public override void FlushInputBuffer() { }
    public override BufferCell[,] GetBufferContents(Rectangle rectangle) => new BufferCell[0, 0];
    public override KeyInfo ReadKey(ReadKeyOptions options) => throw new NotSupportedException("The test host has no keyboard.");
    public override void ScrollBufferContents(Rectangle source, Coordinates destination, Rectangle clip, BufferCell fill) { }
    public override void SetBufferContents(Coordinates origin, BufferCell[,] contents) { }
    public override void SetBufferContents(Rectangle rectangle, BufferCell fill) { }
}
