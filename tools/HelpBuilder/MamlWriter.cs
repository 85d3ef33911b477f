using System.Xml.Linq;

namespace HelpBuilder;

/// <summary>Writes the MAML file Get-Help reads for compiled cmdlets (&lt;Assembly&gt;.dll-Help.xml).</summary>
internal static class MamlWriter
{
    private static readonly XNamespace Msh = "http://msh";
    private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";
    private const string AllSets = "(All)";

    public static XDocument Write(IEnumerable<CommandHelp> commands)
    {
        var root = new XElement(Msh + "helpItems", new XAttribute("schema", "maml"));
        foreach (var command in commands.OrderBy(c => c.Name, StringComparer.Ordinal)) root.Add(CommandElement(command));
        return new XDocument(new XDeclaration("1.0", "utf-8", null), root);
    }

    private static XElement CommandElement(CommandHelp help)
    {
        var dash = help.Name.IndexOf('-');
        var verb = dash > 0 ? help.Name[..dash] : help.Name;
        var noun = dash > 0 ? help.Name[(dash + 1)..] : "";
        return new XElement(Command + "command",
            new XAttribute(XNamespace.Xmlns + "maml", Maml),
            new XAttribute(XNamespace.Xmlns + "command", Command),
            new XAttribute(XNamespace.Xmlns + "dev", Dev),
            new XElement(Command + "details",
                new XElement(Command + "name", help.Name),
                new XElement(Command + "verb", verb),
                new XElement(Command + "noun", noun),
                Description(new[] { help.Synopsis })),
            Description(help.Description),
            new XElement(Command + "syntax", SetNames(help).Select(set => SyntaxItem(help, set))),
            new XElement(Command + "parameters", help.Parameters.Select(p => Parameter(p, p.Sets.FirstOrDefault()))),
            new XElement(Command + "inputTypes", help.Inputs.Select(t => TypeElement("inputType", t))),
            new XElement(Command + "returnValues", help.Outputs.Select(t => TypeElement("returnValue", t))),
            new XElement(Maml + "alertSet", new XElement(Maml + "alert", help.Notes.Select(Para))),
            new XElement(Command + "examples", help.Examples.Select((e, i) => ExampleElement(e, i + 1))),
            new XElement(Command + "relatedLinks", help.RelatedLinks.Select(l =>
                new XElement(Maml + "navigationLink",
                    new XElement(Maml + "linkText", l.Text),
                    new XElement(Maml + "uri", l.Uri)))));
    }

    /// <summary>Parameter sets named in the page; parameters in "(All)" belong to every one of them.</summary>
    private static IEnumerable<string> SetNames(CommandHelp help)
    {
        var named = help.Parameters.SelectMany(p => p.Sets).Select(s => s.Name)
            .Where(n => n != AllSets).Distinct(StringComparer.Ordinal).ToList();
        return named.Count == 0 ? new[] { AllSets } : named;
    }

    private static XElement SyntaxItem(CommandHelp help, string setName)
    {
        var item = new XElement(Command + "syntaxItem", new XElement(Maml + "name", help.Name));
        var members = help.Parameters
            .Select(p => (Parameter: p, Use: p.Sets.FirstOrDefault(s => s.Name == setName) ?? p.Sets.FirstOrDefault(s => s.Name == AllSets)))
            .Where(x => x.Use is not null)
            .OrderBy(x => int.TryParse(x.Use!.Position, out var pos) ? pos : int.MaxValue)
            .ThenBy(x => x.Use!.IsRequired ? 0 : 1);
        foreach (var (parameter, use) in members) item.Add(Parameter(parameter, use));
        return item;
    }

    private static XElement Parameter(ParameterHelp parameter, ParameterSetUse? use)
    {
        use ??= new ParameterSetUse();
        var typeName = ShortTypeName(parameter.Type);
        var element = new XElement(Command + "parameter",
            new XAttribute("required", use.IsRequired ? "true" : "false"),
            new XAttribute("variableLength", parameter.Type.EndsWith("[]", StringComparison.Ordinal) ? "true" : "false"),
            new XAttribute("globbing", parameter.SupportsWildcards ? "true" : "false"),
            new XAttribute("pipelineInput", PipelineText(use)),
            new XAttribute("position", use.Position.Equals("Named", StringComparison.OrdinalIgnoreCase) ? "named" : use.Position),
            new XAttribute("aliases", parameter.Aliases.Count == 0 ? "none" : string.Join(", ", parameter.Aliases)),
            new XElement(Maml + "name", parameter.Name),
            Description(parameter.Description));
        if (parameter.AcceptedValues.Count > 0)
        {
            element.Add(new XElement(Command + "parameterValueGroup",
                parameter.AcceptedValues.Select(v => new XElement(Command + "parameterValue",
                    new XAttribute("required", "false"), new XAttribute("variableLength", "false"), v))));
        }
        if (!parameter.IsSwitch)
        {
            element.Add(new XElement(Command + "parameterValue",
                new XAttribute("required", "true"), new XAttribute("variableLength", "false"), typeName));
        }
        element.Add(new XElement(Dev + "type", new XElement(Maml + "name", parameter.Type), new XElement(Maml + "uri")));
        element.Add(new XElement(Dev + "defaultValue", parameter.DefaultValue ?? (parameter.IsSwitch ? "False" : "None")));
        return element;
    }

    private static string PipelineText(ParameterSetUse use) => (use.ValueFromPipeline, use.ValueFromPipelineByPropertyName) switch
    {
        (true, true) => "True (ByPropertyName, ByValue)",
        (true, false) => "True (ByValue)",
        (false, true) => "True (ByPropertyName)",
        _ => "False",
    };

    private static string ShortTypeName(string fullName)
    {
        var lastDot = fullName.LastIndexOf('.');
        return lastDot >= 0 ? fullName[(lastDot + 1)..] : fullName;
    }

    private static XElement TypeElement(string elementName, TypeHelp type) =>
        new(Command + elementName,
            new XElement(Dev + "type", new XElement(Maml + "name", type.TypeName)),
            Description(type.Description));

    private static XElement ExampleElement(Example example, int number)
    {
        var title = example.Title.StartsWith("Example", StringComparison.OrdinalIgnoreCase) ? example.Title : $"Example {number}: {example.Title}";
        return new XElement(Command + "example",
            new XElement(Maml + "title", $"--------- {title} ---------"),
            new XElement(Dev + "code", example.Code),
            new XElement(Dev + "remarks", example.Remarks.Select(Para)));
    }

    private static XElement Description(IEnumerable<string> paragraphs) =>
        new(Maml + "description", paragraphs.Where(p => p.Length > 0).Select(Para));

    private static XElement Para(string text) => new(Maml + "para", text);
}
