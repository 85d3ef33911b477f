using System.Management.Automation;
using System.Management.Automation.Language;
using System.Text.RegularExpressions;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// The demo, the README, the guides and the Pester files are what users copy. The README and the guides are never
/// run, and a script run only reaches the branches it takes, so all of them are checked statically against the
/// loaded module: they parse, name only commands the module exports, pass only parameters those commands have
/// (resolved the way the binder does: prefixes and aliases), and leave out none of a command's mandatory
/// parameters (which would prompt, or fail in a script).
/// </summary>
public sealed partial class DocumentedCodeTests : IClassFixture<SharedSession>
{
    private readonly HostedPowerShell _ps;
    private readonly Lazy<Dictionary<string, CommandInfo>> _commands;

    public DocumentedCodeTests(SharedSession session)
    {
        _ps = session.PowerShell;
        _commands = new Lazy<Dictionary<string, CommandInfo>>(LoadCommands);
    }

    public static IEnumerable<object[]> Sources()
    {
        var root = RepoPaths.Root;
        var files = Directory.GetFiles(Path.Combine(root, "examples"), "*.ps1")
            .Concat(Directory.GetFiles(Path.Combine(root, "tests"), "*.ps1"))
            .Append(Path.Combine(root, "build.ps1"))
            .Append(Path.Combine(root, "README.md"))
            .Append(Path.Combine(RepoPaths.Docs, "about_SleapRtc.md"))
            .Concat(Directory.GetFiles(Path.Combine(RepoPaths.Docs, "guides"), "*.md"));
        return files.Select(f => new object[] { Path.GetRelativePath(root, f) });
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Code_parses_and_calls_module_commands_only_with_parameters_they_have(string relativePath)
    {
        foreach (var (call, name) in SleapCalls(relativePath, includeInlineSpans: true))
        {
            Assert.True(_commands.Value.ContainsKey(name), $"{relativePath}: calls {name}, which the module does not export");
            foreach (var used in call.CommandElements.OfType<CommandParameterAst>())
            {
                var candidates = ParameterNames(_commands.Value[name]).Where(p => p.StartsWith(used.ParameterName, StringComparison.OrdinalIgnoreCase)).ToList();
                Assert.True(candidates.Count > 0, $"{relativePath}: {name} has no parameter -{used.ParameterName}");
            }
        }
    }

    /// <summary>
    /// Every call of our commands binds a whole parameter set: its mandatory parameters are named, given by
    /// position, or (for a command that is not first in its pipeline) can come from the pipeline. Inline code spans
    /// in prose are fragments (`Submit-SleapTraining -AutoSelect`), so only code blocks and scripts are held to it;
    /// a splatted call is left to the binder.
    /// </summary>
    [Theory]
    [MemberData(nameof(Sources))]
    public void Code_passes_every_mandatory_parameter_of_module_commands(string relativePath)
    {
        var missing = SleapCalls(relativePath, includeInlineSpans: false)
            .Where(c => _commands.Value.ContainsKey(c.Name))
            .Select(c => UnboundMandatoryParameters(c.Call, _commands.Value[c.Name]))
            .Where(problem => problem is not null)
            .ToList();
        Assert.True(missing.Count == 0, $"{relativePath}: {string.Join("\n", missing)}");
    }

    /// <summary>The check above binds the way PowerShell's binder does, on the module's real commands.</summary>
    [Theory]
    [InlineData("ConvertTo-SleapSessionString -RoomId r -Token t -PeerId p", true)]
    [InlineData("ConvertTo-SleapSessionString r t p", true)] // by position
    [InlineData("ConvertTo-SleapSessionString -Token t r p", true)] // named first, the rest fill the remaining positions
    [InlineData("$worker | ConvertTo-SleapSessionString -Token t", true)] // RoomId, PeerId by property name from the pipeline
    [InlineData("ConvertTo-SleapSessionString @splat", true)] // left to the binder
    [InlineData("ConvertTo-SleapSessionString -RoomId r -Token t -Server s", false)] // README's tour before the fix
    [InlineData("ConvertTo-SleapSessionString r t", false)]
    [InlineData("Submit-SleapTraining -AutoSelect -RoomId r", false)] // no -PackagePath
    [InlineData("Submit-SleapTraining -AutoSelect labels.zip", true)] // a switch takes no value: labels.zip is -PackagePath
    [InlineData("Get-SleapWorker -Local", true)]
    [InlineData("Get-SleapWorker -Local -RoomId r", false)] // no parameter set takes both
    public void The_mandatory_parameter_check_binds_as_the_binder_does(string code, bool binds)
    {
        var ast = Parser.ParseInput(code, out _, out _);
        var call = ast.FindAll(a => a is CommandAst, searchNestedScriptBlocks: true).Cast<CommandAst>().Single();
        var problem = UnboundMandatoryParameters(call, _commands.Value[call.GetCommandName()]);
        Assert.True(binds == (problem is null), problem ?? $"'{code}' should have been found incomplete");
    }

    /// <summary>
    /// Null when some parameter set of <paramref name="command"/> is fully bound by the call; else, per set, the
    /// mandatory parameters left unbound.
    /// </summary>
    internal static string? UnboundMandatoryParameters(CommandAst call, CommandInfo command)
    {
        if (call.CommandElements.Any(e => e is VariableExpressionAst { Splatted: true })) return null;
        var named = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var positional = 0;
        var arguments = call.CommandElements.Skip(1).ToList();
        for (var i = 0; i < arguments.Count; i++)
        {
            if (arguments[i] is not CommandParameterAst used)
            {
                positional++;
                continue;
            }
            var parameter = ResolveParameter(command, used.ParameterName);
            if (parameter is null) continue; // an unknown parameter is the other test's finding
            named.Add(parameter.Name);
            // -Name value: the next element is the value, unless the parameter is a switch or took -Name:value.
            if (used.Argument is null && parameter.ParameterType != typeof(SwitchParameter)) i++;
        }
        var piped = call.Parent is PipelineAst pipeline && pipeline.PipelineElements.IndexOf(call) > 0;
        var perSet = new List<string>();
        foreach (var set in command.ParameterSets)
        {
            if (named.Any(n => !set.Parameters.Any(p => p.Name.Equals(n, StringComparison.OrdinalIgnoreCase)))) continue;
            var byPosition = set.Parameters.Where(p => p.Position >= 0 && !named.Contains(p.Name))
                .OrderBy(p => p.Position).Take(positional).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var unbound = set.Parameters
                .Where(p => p.IsMandatory && !named.Contains(p.Name) && !byPosition.Contains(p.Name)
                    && !(piped && (p.ValueFromPipeline || p.ValueFromPipelineByPropertyName)))
                .Select(p => "-" + p.Name).ToList();
            if (unbound.Count == 0) return null;
            perSet.Add($"{set.Name}: {string.Join(", ", unbound)}");
        }
        return $"line {call.Extent.StartLineNumber}: '{call.Extent.Text}' leaves mandatory parameters unbound ({(perSet.Count == 0 ? "no parameter set takes these parameters together" : string.Join("; ", perSet))})";
    }

    /// <summary>The parameter the binder picks for -<paramref name="used"/>: an exact name or alias, else a unique prefix.</summary>
    private static ParameterMetadata? ResolveParameter(CommandInfo command, string used)
    {
        var parameters = command.Parameters.Values;
        var exact = parameters.FirstOrDefault(p => p.Name.Equals(used, StringComparison.OrdinalIgnoreCase)
            || p.Aliases.Contains(used, StringComparer.OrdinalIgnoreCase));
        if (exact is not null) return exact;
        var byPrefix = parameters.Where(p => p.Name.StartsWith(used, StringComparison.OrdinalIgnoreCase)
            || p.Aliases.Any(a => a.StartsWith(used, StringComparison.OrdinalIgnoreCase))).ToList();
        return byPrefix.Count == 1 ? byPrefix[0] : null;
    }

    private static IEnumerable<string> ParameterNames(CommandInfo command) =>
        command.Parameters.Values.SelectMany(p => p.Aliases.Prepend(p.Name));

    /// <summary>Every call of a *-Sleap* command in the file's code, after checking that each block parses.</summary>
    private static IEnumerable<(CommandAst Call, string Name)> SleapCalls(string relativePath, bool includeInlineSpans)
    {
        var blocks = CodeOf(Path.Combine(RepoPaths.Root, relativePath), includeInlineSpans);
        if (includeInlineSpans) Assert.NotEmpty(blocks);
        foreach (var code in blocks)
        {
            var ast = Parser.ParseInput(code, out _, out var errors);
            Assert.True(errors.Length == 0, $"{relativePath}: does not parse: {string.Join("; ", errors.Select(e => $"{e.Extent.StartLineNumber}: {e.Message}"))}\n{code}");
            foreach (var call in ast.FindAll(a => a is CommandAst, searchNestedScriptBlocks: true).Cast<CommandAst>())
            {
                var name = call.GetCommandName();
                if (name is not null && SleapCommandName().IsMatch(name)) yield return (call, name);
            }
        }
    }

    /// <summary>
    /// The module loads in Windows PowerShell 5.1, so what users copy must parse there too: no PowerShell 7 operators
    /// (ternary, &amp;&amp;/||, ??, ?.), no clean block, no ForEach-Object -Parallel, no 7-only cmdlets. The 7.6 parser
    /// accepts them all, so they are found in its syntax tree. build.ps1 is for pwsh users and may use them.
    /// </summary>
    [Theory]
    [MemberData(nameof(SourcesForBothEditions))]
    public void Code_users_copy_uses_only_what_Windows_PowerShell_5_1_understands(string relativePath)
    {
        foreach (var code in CodeOf(Path.Combine(RepoPaths.Root, relativePath), includeInlineSpans: true))
        {
            var ast = Parser.ParseInput(code, out _, out _);
            var found = ast.FindAll(node => SevenOnly(node) is not null, searchNestedScriptBlocks: true)
                .Select(node => $"line {node.Extent.StartLineNumber}: {SevenOnly(node)} in '{node.Extent.Text}'").ToList();
            Assert.True(found.Count == 0, $"{relativePath} uses PowerShell 7-only syntax: {string.Join("; ", found)}");
        }
    }

    public static IEnumerable<object[]> SourcesForBothEditions() =>
        Sources().Where(s => (string)s[0] != "build.ps1")
            .Concat(Directory.GetFiles(RepoPaths.Docs, "*-*.md").Select(f => new object[] { Path.GetRelativePath(RepoPaths.Root, f) }));

    private static readonly string[] SevenOnlyCommands = { "Join-String", "Get-Error", "Test-Json", "Get-Uptime", "ConvertFrom-Markdown", "Show-Markdown", "Remove-Alias", "Remove-Service" };

    private static string? SevenOnly(Ast node) => node switch
    {
        TernaryExpressionAst => "the ternary operator",
        PipelineChainAst => "a && / || pipeline chain",
        BinaryExpressionAst { Operator: TokenKind.QuestionQuestion } => "the ?? operator",
        AssignmentStatementAst { Operator: TokenKind.QuestionQuestionEquals } => "the ??= operator",
        MemberExpressionAst { NullConditional: true } => "the ?. operator",
        IndexExpressionAst { NullConditional: true } => "the ?[] operator",
        NamedBlockAst { BlockKind: TokenKind.Clean } => "a clean block",
        CommandAst command when command.GetCommandName() is "ForEach-Object" or "foreach" or "%"
            && command.CommandElements.OfType<CommandParameterAst>().Any(p => "Parallel".StartsWith(p.ParameterName, StringComparison.OrdinalIgnoreCase) && p.ParameterName.Length >= 2)
            => "ForEach-Object -Parallel",
        CommandAst command when SevenOnlyCommands.Contains(command.GetCommandName(), StringComparer.OrdinalIgnoreCase) => command.GetCommandName() + " (PowerShell 7 only)",
        _ => null,
    };

    [Fact]
    public void The_readme_commands_name_files_that_exist()
    {
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        foreach (var path in new[] { "SleapRtc.sln", "examples/demo.ps1", ".ci/install-deps.sh", "build.ps1", "SleapRtc.psd1", ".config/dotnet-tools.json", "tests/PesterModule/PesterModule.csproj" })
        {
            Assert.Contains(path, readme);
            Assert.True(File.Exists(Path.Combine(RepoPaths.Root, path)), $"README names {path}, which does not exist");
        }
        foreach (Match bench in Regex.Matches(readme, @"--project (bench/[A-Za-z]+)"))
            Assert.True(Directory.Exists(Path.Combine(RepoPaths.Root, bench.Groups[1].Value)), $"README runs {bench.Groups[1].Value}, which does not exist");
    }

    /// <summary>
    /// A script file whole; from markdown, the powershell-fenced blocks and (with <paramref name="includeInlineSpans"/>)
    /// the inline code spans that start with one of our commands (prose like `Get-SleapWorker -Status busy`), with
    /// `&lt;id&gt;`-style placeholders made words.
    /// </summary>
    private static List<string> CodeOf(string path, bool includeInlineSpans)
    {
        var text = File.ReadAllText(path);
        if (path.EndsWith(".ps1", StringComparison.Ordinal)) return new List<string> { text };
        var fenced = FencedPowerShell().Matches(text).Select(m => m.Groups[1].Value).ToList();
        if (!includeInlineSpans) return fenced;
        var prose = FencedAny().Replace(text, "");
        var inline = InlineCommand().Matches(prose).Select(m => Placeholder().Replace(m.Groups[1].Value, "placeholder"));
        return fenced.Concat(inline).ToList();
    }

    /// <summary>The module's commands as the session loaded them: parameters, aliases, sets, positions, pipeline input.</summary>
    private Dictionary<string, CommandInfo> LoadCommands() =>
        _ps.Run("Get-Command -Module SleapRtc").ThrowOnError().Output
            .Select(o => (CommandInfo)o.BaseObject)
            .ToDictionary(c => c.Name, StringComparer.OrdinalIgnoreCase);

    [GeneratedRegex(@"^[A-Za-z]+-Sleap[A-Za-z]+$")]
    private static partial Regex SleapCommandName();

    [GeneratedRegex(@"```(?:powershell|pwsh|ps1)\r?\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FencedPowerShell();

    [GeneratedRegex(@"```.*?```", RegexOptions.Singleline)]
    private static partial Regex FencedAny();

    [GeneratedRegex(@"`([A-Za-z]+-Sleap[A-Za-z]+(?: [^`\r\n]*)?)`")]
    private static partial Regex InlineCommand();

    [GeneratedRegex(@"<[^<>\s]+>")]
    private static partial Regex Placeholder();
}
