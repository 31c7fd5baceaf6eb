//! The Terraform under `infra/` must build what the declaration (`infra/declaration.json`)
//! says, and no more. This test parses the Terraform (hcl-rs) and evaluates the parts that
//! decide it, the way Terraform would, with the declaration as input, so it checks what
//! would be deployed rather than what the text looks like. It fails when:
//!
//! - a function binary has no Lambda or a Lambda has no binary: the one
//!   `aws_lambda_function` is `for_each` over the functions the root module reads from the
//!   declaration file, and there is no other;
//! - a function's IAM policy grants `*` (actions or resources; the X-Ray statement is the
//!   one allowlisted exception) or reaches a table, table stream, queue, Kinesis stream,
//!   bus or state machine the declaration does not give it, or other DynamoDB, bus or Step
//!   Functions actions than the declared ones;
//! - an event-source mapping does not report batch item failures, or a stream mapping
//!   (DynamoDB or Kinesis) does not bisect, bound its retries and record age, and send what
//!   it gives up on to a queue;
//! - a table lacks point-in-time recovery, or a replica (with it) in every other region;
//! - the bus has no archive, or a rule's target does not retry within the declared bounds
//!   and then dead-letter to the bus's dead-letter queue;
//! - a state machine references a function or template variable that is not declared.
//!
//! Each check is a function from the parsed infra to a list of violations, so the negative
//! tests at the end can feed it mutated copies of the real files and see it fail: a check
//! that cannot fail checks nothing.
//!
//! Why a small evaluator of our own, over hcl-rs's parsed `hcl::Expression`, rather than
//! hcl-rs's `eval` or Terraform itself (checked 2026-12-07, hcl-rs 0.20, Terraform 1.11):
//!
//! - Terraform evaluates nothing without its AWS provider: `terraform console`, `validate`
//!   and `plan` stop at "provider registry.terraform.io/hashicorp/aws: required by this
//!   configuration but no version is selected", and the machines this project is built and
//!   tested on cannot reach registry.terraform.io to install it.
//! - hcl-rs's `eval` evaluates every argument before it calls a function, and a function is
//!   a plain `fn` pointer. So `try(var.declaration.state_machines, {})`, the idiom these
//!   modules use for optional declaration keys, fails on the missing key before `try` runs
//!   (`hcl_rs_eval_cannot_evaluate_the_modules_try_idiom` below keeps that true, and fails
//!   the day hcl-rs can, so this evaluator can go); and resource references, lazy locals and
//!   `templatefile` need state a `fn` pointer cannot carry.
//!
//! The evaluator covers what the modules use: locals (lazily, from
//! the HCL), `var` (module inputs evaluated from the root module's `module` blocks),
//! `each`, `for` expressions, conditionals (only the taken branch), templates, `try`/`can`
//! and the Terraform functions the modules call; `dynamic` blocks are expanded. An
//! unmodelled function or construct is an error, reported as a violation, never skipped.
//! References to resources (`aws_sqs_queue.this["q"].arn`) become symbols naming the
//! resource and its instance; the instance must exist (`for_each`/`count` of the resource is
//! evaluated), as Terraform would insist. The tables come from the global module's outputs,
//! which need real ARNs, so the regional module gets symbolic ones: `table:<t>`,
//! `table-stream:<t>`, `kms-key:tables`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use e2e::root;
use hcl::expr::{
    BinaryOperator, Expression, ForExpr, FuncCall, ObjectKey, Operation, Traversal,
    TraversalOperator, UnaryOperator,
};
use hcl::template::{Directive, Element};
use hcl::{Block, Body, Structure, Template};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------
// Sources: the files of infra/ as text, so negative tests can mutate copies.
// ---------------------------------------------------------------------------------------

/// Every file of `infra/` the checks read, by path relative to `infra/`: the Terraform of
/// the root and of each module, the declaration and the state machine templates.
#[derive(Clone)]
struct Sources(BTreeMap<String, String>);

impl Sources {
    fn load() -> Self {
        static SOURCES: OnceLock<Sources> = OnceLock::new();
        SOURCES
            .get_or_init(|| {
                let infra = root().join("infra");
                let mut files = BTreeMap::new();
                let mut add = |dir: &str, keep: &dyn Fn(&str) -> bool| {
                    for entry in std::fs::read_dir(infra.join(dir)).unwrap() {
                        let path = entry.unwrap().path();
                        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                        if path.is_file() && keep(&name) {
                            let rel = if dir.is_empty() {
                                name
                            } else {
                                format!("{dir}/{name}")
                            };
                            files.insert(rel, std::fs::read_to_string(&path).unwrap());
                        }
                    }
                };
                add("", &|n| n.ends_with(".tf") || n == "declaration.json");
                add("state-machines", &|n| n.ends_with(".json"));
                for entry in std::fs::read_dir(infra.join("modules")).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        let module = path.file_name().unwrap().to_str().unwrap();
                        add(&format!("modules/{module}"), &|n| n.ends_with(".tf"));
                    }
                }
                Sources(files)
            })
            .clone()
    }

    /// A copy with `from` replaced by `to` in `file`; `from` must occur exactly once, so a
    /// negative test cannot quietly stop mutating anything when the Terraform changes.
    fn edit(&self, file: &str, from: &str, to: &str) -> Self {
        let text = self
            .0
            .get(file)
            .unwrap_or_else(|| panic!("no infra/{file}"));
        assert_eq!(
            text.matches(from).count(),
            1,
            "infra/{file} must contain exactly once (update this negative test):\n{from}"
        );
        let mut copy = self.clone();
        copy.0.insert(file.to_owned(), text.replacen(from, to, 1));
        copy
    }

    /// A copy with one more file, by its path relative to infra/ (e.g. `../target/...`
    /// normalised as the evaluator's `file` does: `target/...`).
    fn with_file(&self, file: &str, text: &str) -> Self {
        let mut copy = self.clone();
        copy.0.insert(file.to_owned(), text.to_owned());
        copy
    }

    fn append(&self, file: &str, text: &str) -> Self {
        let mut copy = self.clone();
        copy.0.get_mut(file).unwrap().push_str(text);
        copy
    }
}

// ---------------------------------------------------------------------------------------
// The parsed infra.
// ---------------------------------------------------------------------------------------

/// One Terraform module: its files, parsed.
struct Module {
    dir: String,
    files: Vec<(String, Body)>,
}

impl Module {
    fn blocks<'m>(&'m self, kind: &str) -> impl Iterator<Item = (&'m str, &'m Block)> + 'm {
        let kind = kind.to_owned();
        self.files.iter().flat_map(move |(file, body)| {
            let kind = kind.clone();
            body.blocks()
                .filter(move |b| b.identifier.as_str() == kind)
                .map(move |b| (file.as_str(), b))
        })
    }

    /// `resource "<ty>" "<name>"` (or `data`), if declared.
    fn find(&self, kind: &str, ty: &str, name: &str) -> Option<&Block> {
        self.blocks(kind)
            .map(|(_, b)| b)
            .find(|b| label(b, 0) == Some(ty) && label(b, 1) == Some(name))
    }

    fn module_call(&self, name: &str) -> Option<&Block> {
        self.blocks("module")
            .map(|(_, b)| b)
            .find(|b| label(b, 0) == Some(name))
    }
}

struct Infra {
    modules: BTreeMap<String, Module>,
    declaration: Value,
    files: BTreeMap<String, String>,
}

impl Infra {
    fn parse(sources: &Sources) -> Result<Infra, String> {
        let mut modules: BTreeMap<String, Module> = BTreeMap::new();
        for (path, text) in &sources.0 {
            let Some(stem) = path.strip_suffix(".tf") else {
                continue;
            };
            let dir = stem.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
            let body = hcl::parse(text).map_err(|e| format!("infra/{path}: {e}"))?;
            modules
                .entry(dir.clone())
                .or_insert_with(|| Module {
                    dir,
                    files: Vec::new(),
                })
                .files
                .push((path.clone(), body));
        }
        let declaration = serde_json::from_str(
            sources
                .0
                .get("declaration.json")
                .ok_or("no infra/declaration.json")?,
        )
        .map_err(|e| format!("infra/declaration.json: {e}"))?;
        Ok(Infra {
            modules,
            declaration,
            files: sources.0.clone(),
        })
    }

    fn module(&self, dir: &str) -> Result<&Module, String> {
        self.modules
            .get(dir)
            .ok_or_else(|| format!("no module infra/{dir}"))
    }

    /// Every `resource "<ty>"` in any module: (module dir, file, name, block).
    fn resources<'i>(&'i self, ty: &str) -> Vec<(&'i str, &'i str, &'i str, &'i Block)> {
        let mut out = Vec::new();
        for module in self.modules.values() {
            for (file, block) in module.blocks("resource") {
                if label(block, 0) == Some(ty) {
                    out.push((
                        module.dir.as_str(),
                        file,
                        label(block, 1).unwrap_or(""),
                        block,
                    ));
                }
            }
        }
        out
    }

    fn functions(&self) -> &Map<String, Value> {
        self.declaration["functions"].as_object().unwrap()
    }

    /// The root module, deployed to `regions` (primary first; absent ones are null).
    fn root_module(&self, regions: &[&str]) -> Result<Eval<'_>, String> {
        let region = |i: usize| regions.get(i).map_or(Value::Null, |r| json!(r));
        let inputs = json!({
            "regions": { "primary": region(0), "secondary": region(1), "third": region(2) },
            "api_domain_name": "api.example.com",
            "hosted_zone_id": "Z0000000000000EXAMPLE",
        });
        Eval::new(self, self.module("")?, inputs)
    }

    /// The inputs the root module gives module `call` (`module "<call>" { ... }`): every
    /// argument evaluated in the root module.
    fn inputs_of(&self, root: &Eval<'_>, call: &str) -> Result<Map<String, Value>, String> {
        let block = root
            .module
            .module_call(call)
            .ok_or_else(|| format!("the root module has no module \"{call}\""))?;
        let mut inputs = Map::new();
        for a in block.body.attributes() {
            let key = a.key.as_str();
            if [
                "source",
                "providers",
                "count",
                "for_each",
                "depends_on",
                "version",
            ]
            .contains(&key)
            {
                continue;
            }
            let value = root
                .eval(&a.expr, &Scope::new())
                .map_err(|e| format!("module \"{call}\", argument {key}: {e}"))?;
            inputs.insert(key.to_owned(), value);
        }
        Ok(inputs)
    }

    /// The regional module as the root module instantiates it in the primary region
    /// (`module "primary"`). Its tables and their key come from the global module's
    /// outputs, which are not evaluated here: they are given symbolic ARNs instead.
    fn regional(&self) -> Result<Eval<'_>, String> {
        let root = self.root_module(&[PRIMARY])?;
        let mut inputs = self.inputs_of(&root, "primary")?;
        let declared = inputs
            .get("declaration")
            .and_then(|d| d.get("tables"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let tables: Map<String, Value> = declared
            .keys()
            .map(|t| {
                (
                    t.clone(),
                    json!({
                        "name": format!("{NAME_PREFIX}-{t}"),
                        "arn": format!("table:{t}"),
                        "stream_arn": format!("table-stream:{t}"),
                    }),
                )
            })
            .collect();
        inputs.insert("tables".into(), Value::Object(tables));
        inputs.insert("table_key_arn".into(), json!("kms-key:tables"));
        Eval::new(
            self,
            self.module("modules/regional")?,
            Value::Object(inputs),
        )
    }

    /// The global module as the root module instantiates it for `regions`.
    fn global(&self, regions: &[&str]) -> Result<Eval<'_>, String> {
        let root = self.root_module(regions)?;
        let inputs = self.inputs_of(&root, "global")?;
        Eval::new(self, self.module("modules/global")?, Value::Object(inputs))
    }
}

fn label(block: &Block, i: usize) -> Option<&str> {
    block.labels.get(i).map(|l| l.as_str())
}

fn attr<'b>(body: &'b Body, key: &str) -> Option<&'b Expression> {
    body.attributes()
        .find(|a| a.key.as_str() == key)
        .map(|a| &a.expr)
}

// ---------------------------------------------------------------------------------------
// The evaluator.
// ---------------------------------------------------------------------------------------

const PRIMARY: &str = "eu-west-1";
const SECONDARY: &str = "eu-central-1";
const THIRD: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const NAME_PREFIX: &str = "commerce";

/// Names bound by `for` expressions, `each`, `count` and `dynamic` iterators.
type Scope = BTreeMap<String, Value>;

/// The instance keys of a resource (`None`: a single instance), or why they cannot be had.
type Instances = Result<Option<BTreeSet<String>>, String>;

/// Each function's evaluated policy statements.
type Policies = BTreeMap<String, Vec<Statement>>;

/// One module, instantiated: its inputs (`var`), its locals (evaluated on first use,
/// from the HCL), and the fixed roots (`path`, `data` sources the modules read).
struct Eval<'a> {
    infra: &'a Infra,
    module: &'a Module,
    vars: Value,
    roots: Scope,
    locals: BTreeMap<String, &'a Expression>,
    cache: RefCell<BTreeMap<String, Result<Value, String>>>,
    busy: RefCell<BTreeSet<String>>,
    instances: RefCell<BTreeMap<String, Instances>>,
}

impl<'a> Eval<'a> {
    /// `inputs` over the defaults of the module's `variable` blocks.
    fn new(infra: &'a Infra, module: &'a Module, inputs: Value) -> Result<Self, String> {
        let mut locals = BTreeMap::new();
        for (_, block) in module.blocks("locals") {
            for a in block.body.attributes() {
                locals.insert(a.key.as_str().to_owned(), &a.expr);
            }
        }
        let module_path = if module.dir.is_empty() {
            ".".to_owned()
        } else {
            module.dir.clone()
        };
        let mut roots = Scope::new();
        roots.insert(
            "path".into(),
            json!({ "module": module_path, "root": ".", "cwd": "." }),
        );
        roots.insert(
            "data".into(),
            json!({
                "aws_partition": { "current": { "partition": "aws" } },
                "aws_caller_identity": { "current": { "account_id": ACCOUNT } },
            }),
        );
        let mut eval = Eval {
            infra,
            module,
            vars: json!({}),
            roots,
            locals,
            cache: RefCell::default(),
            busy: RefCell::default(),
            instances: RefCell::default(),
        };
        let mut vars = Map::new();
        for (_, block) in module.blocks("variable") {
            if let (Some(name), Some(default)) = (label(block, 0), attr(&block.body, "default")) {
                let value = eval
                    .eval(default, &Scope::new())
                    .map_err(|e| format!("default of var.{name}: {e}"))?;
                vars.insert(name.to_owned(), value);
            }
        }
        if let Value::Object(inputs) = inputs {
            vars.extend(inputs);
        }
        eval.vars = Value::Object(vars);
        Ok(eval)
    }

    fn eval(&self, e: &Expression, scope: &Scope) -> Result<Value, String> {
        match e {
            Expression::Null => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b)),
            Expression::Number(n) => Ok(match n.as_i64() {
                Some(i) => json!(i),
                None => json!(n.as_f64()),
            }),
            Expression::String(s) => Ok(Value::String(s.clone())),
            Expression::Array(items) => items
                .iter()
                .map(|i| self.eval(i, scope))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Expression::Object(object) => {
                let mut out = Map::new();
                for (key, value) in object {
                    let key = match key {
                        ObjectKey::Identifier(id) => id.as_str().to_owned(),
                        ObjectKey::Expression(e) => as_key(&self.eval(e, scope)?)?,
                        other => return Err(format!("unsupported object key {other:?}")),
                    };
                    out.insert(key, self.eval(value, scope)?);
                }
                Ok(Value::Object(out))
            }
            Expression::TemplateExpr(t) => {
                let template = Template::from_expr(t).map_err(|e| e.to_string())?;
                self.template(&template, scope)
            }
            Expression::Variable(v) => self.variable(v.as_str(), scope),
            Expression::Traversal(t) => self.traversal(t, scope),
            Expression::FuncCall(f) => self.call(f, scope),
            Expression::Parenthesis(e) => self.eval(e, scope),
            Expression::Conditional(c) => {
                if as_bool(&self.eval(&c.cond_expr, scope)?)? {
                    self.eval(&c.true_expr, scope)
                } else {
                    self.eval(&c.false_expr, scope)
                }
            }
            Expression::Operation(op) => self.operation(op, scope),
            Expression::ForExpr(f) => self.for_expr(f, scope),
            other => Err(format!("unsupported expression {other}")),
        }
    }

    /// A template returns its one interpolation's value unconverted, as Terraform does
    /// for `"${x}"`; otherwise the rendered string.
    fn template(&self, t: &Template, scope: &Scope) -> Result<Value, String> {
        if let [Element::Interpolation(i)] = t.elements() {
            return self.eval(&i.expr, scope);
        }
        let mut out = String::new();
        self.render(t.elements(), scope, &mut out)?;
        Ok(Value::String(out))
    }

    fn render(&self, elements: &[Element], scope: &Scope, out: &mut String) -> Result<(), String> {
        for element in elements {
            match element {
                Element::Literal(s) => out.push_str(s),
                Element::Interpolation(i) => out.push_str(&to_str(&self.eval(&i.expr, scope)?)?),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(i) => {
                        if as_bool(&self.eval(&i.cond_expr, scope)?)? {
                            self.render(i.true_template.elements(), scope, out)?;
                        } else if let Some(f) = &i.false_template {
                            self.render(f.elements(), scope, out)?;
                        }
                    }
                    Directive::For(f) => {
                        for (k, v) in iterate(self.eval(&f.collection_expr, scope)?)? {
                            let mut s = scope.clone();
                            if let Some(kv) = &f.key_var {
                                s.insert(kv.as_str().to_owned(), k);
                            }
                            s.insert(f.value_var.as_str().to_owned(), v);
                            self.render(f.template.elements(), &s, out)?;
                        }
                    }
                },
            }
        }
        Ok(())
    }

    fn variable(&self, name: &str, scope: &Scope) -> Result<Value, String> {
        if let Some(v) = scope.get(name) {
            return Ok(v.clone());
        }
        if name == "var" {
            return Ok(self.vars.clone());
        }
        self.roots
            .get(name)
            .cloned()
            .ok_or_else(|| format!("unknown name {name}"))
    }

    fn traversal(&self, t: &Traversal, scope: &Scope) -> Result<Value, String> {
        let ops = &t.operators[..];
        if let Expression::Variable(v) = &t.expr {
            let root = v.as_str();
            if !scope.contains_key(root) {
                if root == "local" {
                    let Some(TraversalOperator::GetAttr(name)) = ops.first() else {
                        return Err("`local` without a name".into());
                    };
                    // local.x.y where local.x is an object constructor: evaluate only its
                    // y (Terraform's answer, minus the parts this test does not model).
                    if let (Some(TraversalOperator::GetAttr(field)), Some(Expression::Object(o))) =
                        (ops.get(1), self.locals.get(name.as_str()))
                    {
                        let entry = o.iter().find(|(k, _)| match k {
                            ObjectKey::Identifier(id) => id.as_str() == field.as_str(),
                            _ => false,
                        });
                        if let Some((_, expr)) = entry {
                            let value = self
                                .eval(expr, &Scope::new())
                                .map_err(|e| format!("local.{name}.{field}: {e}"))?;
                            return self.apply(value, &ops[2..], scope);
                        }
                    }
                    let value = self.local(name.as_str())?;
                    return self.apply(value, &ops[1..], scope);
                }
                if root.starts_with("aws_") || root == "module" || root == "data" {
                    let known = match (self.roots.get(root), ops.first()) {
                        (Some(r), Some(TraversalOperator::GetAttr(a))) => {
                            r.get(a.as_str()).is_some()
                        }
                        _ => false,
                    };
                    if !known {
                        return self.symbol(root, ops, scope);
                    }
                }
            }
        }
        let base = self.eval(&t.expr, scope)?;
        self.apply(base, ops, scope)
    }

    fn apply(
        &self,
        mut v: Value,
        ops: &[TraversalOperator],
        scope: &Scope,
    ) -> Result<Value, String> {
        for (i, op) in ops.iter().enumerate() {
            v = match op {
                TraversalOperator::GetAttr(a) => match &v {
                    Value::Object(m) => m
                        .get(a.as_str())
                        .cloned()
                        .ok_or_else(|| format!("no attribute .{a}"))?,
                    other => return Err(format!("cannot read .{a} of {}", brief(other))),
                },
                TraversalOperator::Index(e) => index(&v, &self.eval(e, scope)?)?,
                TraversalOperator::LegacyIndex(n) => index(&v, &json!(n))?,
                TraversalOperator::AttrSplat | TraversalOperator::FullSplat => {
                    let items = match v {
                        Value::Array(a) => a,
                        Value::Null => Vec::new(),
                        other => vec![other],
                    };
                    return items
                        .into_iter()
                        .map(|x| self.apply(x, &ops[i + 1..], scope))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Value::Array);
                }
            };
        }
        Ok(v)
    }

    /// A reference to a resource, data source or module output: the symbol
    /// `type.name[key].attr`. The resource must be declared in this module and the
    /// instance must exist.
    fn symbol(
        &self,
        root: &str,
        ops: &[TraversalOperator],
        scope: &Scope,
    ) -> Result<Value, String> {
        let mut parts = Vec::new();
        let mut s = root.to_owned();
        for op in ops {
            match op {
                TraversalOperator::GetAttr(a) => {
                    s.push('.');
                    s.push_str(a.as_str());
                    parts.push(Some(a.as_str().to_owned()));
                }
                TraversalOperator::Index(e) => {
                    let key = to_str(&self.eval(e, scope)?)?;
                    s.push_str(&format!("[{key}]"));
                    parts.push(None);
                    parts.push(Some(key));
                }
                TraversalOperator::LegacyIndex(n) => {
                    s.push_str(&format!("[{n}]"));
                    parts.push(None);
                    parts.push(Some(n.to_string()));
                }
                TraversalOperator::AttrSplat | TraversalOperator::FullSplat => {
                    return Err(format!("splat over {s} is not modelled"));
                }
            }
        }
        // (kind, type, name, instance key if indexed)
        let (kind, ty, name, rest) = match root {
            "data" => (
                "data",
                parts.first(),
                parts.get(1),
                &parts[parts.len().min(2)..],
            ),
            "module" => {
                let name = parts.first().cloned().flatten().unwrap_or_default();
                return match self.module.module_call(&name) {
                    Some(_) => Ok(Value::String(s)),
                    None => Err(format!("{s}: no module \"{name}\"")),
                };
            }
            _ => (
                "resource",
                Some(&Some(root.to_owned())),
                parts.first(),
                &parts[parts.len().min(1)..],
            ),
        };
        let (Some(Some(ty)), Some(Some(name))) = (ty, name) else {
            return Err(format!("{s}: not a reference to a {kind}"));
        };
        let key = match rest {
            [None, Some(key), ..] => Some(key.clone()),
            _ => None,
        };
        match self.instances_of(kind, ty, name)? {
            Some(keys) => match &key {
                Some(k) if keys.contains(k) => {}
                Some(k) => return Err(format!("{s}: {kind} {ty}.{name} has no instance [{k}]")),
                None => {} // the whole collection
            },
            None => {
                if let Some(k) = key {
                    return Err(format!(
                        "{s}: {kind} {ty}.{name} is not a collection, [{k}]"
                    ));
                }
            }
        }
        Ok(Value::String(s))
    }

    /// The instance keys of a resource or data source (for_each keys, count indexes), or
    /// None for a single one.
    fn instances_of(&self, kind: &str, ty: &str, name: &str) -> Instances {
        let id = format!("{kind}.{ty}.{name}");
        if let Some(r) = self.instances.borrow().get(&id) {
            return r.clone();
        }
        let block = self
            .module
            .find(kind, ty, name)
            .ok_or_else(|| format!("no {kind} \"{ty}\" \"{name}\" in infra/{}", self.module.dir))?;
        let result = self
            .instances(block)
            .map(|list| list.map(|l| l.into_iter().map(|(k, _)| k).collect()));
        self.instances.borrow_mut().insert(id, result.clone());
        result
    }

    /// The instances of a block: (key, scope with `each` or `count` bound), or None when it
    /// has neither `for_each` nor `count`.
    fn instances(&self, block: &Block) -> Result<Option<Vec<(String, Scope)>>, String> {
        if let Some(fe) = attr(&block.body, "for_each") {
            let items = match self.eval(fe, &Scope::new())? {
                Value::Array(set) => set.into_iter().map(|v| (v.clone(), v)).collect(),
                Value::Object(map) => map
                    .into_iter()
                    .map(|(k, v)| (json!(k), v))
                    .collect::<Vec<_>>(),
                other => return Err(format!("for_each over {}", brief(&other))),
            };
            return items
                .into_iter()
                .map(|(k, v)| {
                    let key = to_str(&k)?;
                    let scope = Scope::from([("each".to_owned(), json!({ "key": k, "value": v }))]);
                    Ok((key, scope))
                })
                .collect::<Result<Vec<_>, String>>()
                .map(Some);
        }
        if let Some(count) = attr(&block.body, "count") {
            let n = self
                .eval(count, &Scope::new())?
                .as_u64()
                .ok_or("count is not a whole number")?;
            return Ok(Some(
                (0..n)
                    .map(|i| {
                        (
                            i.to_string(),
                            Scope::from([("count".to_owned(), json!({ "index": i }))]),
                        )
                    })
                    .collect(),
            ));
        }
        Ok(None)
    }

    fn local(&self, name: &str) -> Result<Value, String> {
        if let Some(r) = self.cache.borrow().get(name) {
            return r.clone();
        }
        let expr = *self
            .locals
            .get(name)
            .ok_or_else(|| format!("no local.{name}"))?;
        if !self.busy.borrow_mut().insert(name.to_owned()) {
            return Err(format!("local.{name} depends on itself"));
        }
        let result = self
            .eval(expr, &Scope::new())
            .map_err(|e| format!("local.{name}: {e}"));
        self.busy.borrow_mut().remove(name);
        self.cache
            .borrow_mut()
            .insert(name.to_owned(), result.clone());
        result
    }

    fn call(&self, f: &FuncCall, scope: &Scope) -> Result<Value, String> {
        let name = f.name.name.as_str();
        if !f.name.namespace.is_empty() {
            return Err(format!("provider function {name} is not modelled"));
        }
        match name {
            // Lazy: the first argument that evaluates without an error.
            "try" => {
                let mut last = String::from("try() without arguments");
                for a in &f.args {
                    match self.eval(a, scope) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = e,
                    }
                }
                return Err(format!("try(): no argument evaluates; the last: {last}"));
            }
            "can" => {
                let [a] = &f.args[..] else {
                    return Err("can() takes one argument".into());
                };
                return Ok(Value::Bool(self.eval(a, scope).is_ok()));
            }
            _ => {}
        }
        let mut args = f
            .args
            .iter()
            .map(|a| self.eval(a, scope))
            .collect::<Result<Vec<_>, _>>()?;
        if f.expand_final {
            match args.pop() {
                Some(Value::Array(rest)) => args.extend(rest),
                _ => return Err(format!("{name}(...): the expanded argument is not a list")),
            }
        }
        self.builtin(name, args)
            .map_err(|e| format!("{name}(): {e}"))
    }

    /// The Terraform functions the modules call. Anything else is an error, so a new
    /// function in the Terraform fails this test until it is modelled here.
    fn builtin(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let arg = |i: usize| {
            args.get(i)
                .ok_or_else(|| format!("missing argument {}", i + 1))
        };
        let text = |i: usize| -> Result<String, String> { to_str(arg(i)?) };
        let list = |i: usize| -> Result<Vec<Value>, String> {
            match arg(i)? {
                Value::Array(a) => Ok(a.clone()),
                other => Err(format!(
                    "argument {} is {}, not a list",
                    i + 1,
                    brief(other)
                )),
            }
        };
        Ok(match name {
            "file" => Value::String(self.file(&text(0)?)?),
            "templatefile" => {
                let vars = match arg(1)? {
                    Value::Object(m) => m.clone(),
                    other => return Err(format!("vars are {}", brief(other))),
                };
                Value::String(self.templatefile(&text(0)?, &vars)?)
            }
            "jsondecode" => serde_json::from_str(&text(0)?).map_err(|e| e.to_string())?,
            "jsonencode" => Value::String(arg(0)?.to_string()),
            "abspath" => Value::String(text(0)?),
            "length" => json!(match arg(0)? {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.chars().count(),
                other => return Err(format!("length of {}", brief(other))),
            }),
            "keys" => match arg(0)? {
                Value::Object(m) => json!(m.keys().collect::<Vec<_>>()),
                other => return Err(format!("keys of {}", brief(other))),
            },
            "values" => match arg(0)? {
                Value::Object(m) => json!(m.values().collect::<Vec<_>>()),
                other => return Err(format!("values of {}", brief(other))),
            },
            "merge" => {
                let mut out = Map::new();
                for a in &args {
                    match a {
                        Value::Object(m) => out.extend(m.clone()),
                        Value::Null => {}
                        other => return Err(format!("merge of {}", brief(other))),
                    }
                }
                Value::Object(out)
            }
            "concat" => {
                let mut out = Vec::new();
                for i in 0..args.len() {
                    out.extend(list(i)?);
                }
                Value::Array(out)
            }
            "flatten" => {
                fn flat(v: &[Value], out: &mut Vec<Value>) {
                    for x in v {
                        match x {
                            Value::Array(a) => flat(a, out),
                            other => out.push(other.clone()),
                        }
                    }
                }
                let mut out = Vec::new();
                flat(&list(0)?, &mut out);
                Value::Array(out)
            }
            "distinct" | "toset" => {
                let mut out: Vec<Value> = Vec::new();
                for x in list(0)? {
                    if !out.iter().any(|y| equal(y, &x)) {
                        out.push(x);
                    }
                }
                Value::Array(out)
            }
            "tolist" => Value::Array(list(0)?),
            "compact" => Value::Array(
                list(0)?
                    .into_iter()
                    .filter(|x| !x.is_null() && x.as_str() != Some(""))
                    .collect(),
            ),
            "coalesce" => args
                .iter()
                .find(|x| !x.is_null() && x.as_str() != Some(""))
                .cloned()
                .ok_or("every argument is null or empty")?,
            "contains" => Value::Bool(
                list(0)?
                    .iter()
                    .any(|x| equal(x, arg(1).unwrap_or(&Value::Null))),
            ),
            "anytrue" | "alltrue" => {
                let bools = list(0)?
                    .iter()
                    .map(as_bool)
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Bool(if name == "anytrue" {
                    bools.iter().any(|b| *b)
                } else {
                    bools.iter().all(|b| *b)
                })
            }
            "one" => {
                let l = list(0)?;
                match l.len() {
                    0 => Value::Null,
                    1 => l[0].clone(),
                    n => return Err(format!("{n} elements")),
                }
            }
            "lookup" => match (arg(0)?, arg(1)?) {
                (Value::Object(m), Value::String(k)) => match (m.get(k), args.get(2)) {
                    (Some(v), _) | (None, Some(v)) => v.clone(),
                    (None, None) => return Err(format!("no key {k}")),
                },
                _ => return Err("lookup(map, key[, default])".into()),
            },
            "replace" => {
                let (s, from, to) = (text(0)?, text(1)?, text(2)?);
                if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
                    return Err("regular expressions are not modelled".into());
                }
                Value::String(s.replace(&from, &to))
            }
            "title" => {
                // Go's strings.Title: upper-case each letter that follows a separator.
                let mut out = String::new();
                let mut after_separator = true;
                for c in text(0)?.chars() {
                    if after_separator {
                        out.extend(c.to_uppercase());
                    } else {
                        out.push(c);
                    }
                    after_separator = !(c.is_alphanumeric() || c == '_');
                }
                Value::String(out)
            }
            "lower" => Value::String(text(0)?.to_lowercase()),
            "trimspace" => Value::String(text(0)?.trim().to_owned()),
            "upper" => Value::String(text(0)?.to_uppercase()),
            "tostring" => Value::String(text(0)?),
            "join" => Value::String(
                list(1)?
                    .iter()
                    .map(to_str)
                    .collect::<Result<Vec<_>, _>>()?
                    .join(&text(0)?),
            ),
            "split" => json!(text(1)?.split(text(0)?.as_str()).collect::<Vec<_>>()),
            "startswith" => Value::Bool(text(0)?.starts_with(&text(1)?)),
            "endswith" => Value::Bool(text(0)?.ends_with(&text(1)?)),
            other => {
                return Err(format!(
                    "function {other} is not modelled by tests/infra.rs"
                ));
            }
        })
    }

    /// A file, by a path relative to infra/ (as path.module and abspath leave it).
    fn file(&self, path: &str) -> Result<String, String> {
        let mut parts: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        let key = parts.join("/");
        self.infra
            .files
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("no file infra/{key}"))
    }

    /// templatefile: the template sees only `vars`; a name without a value is an error.
    fn templatefile(&self, path: &str, vars: &Map<String, Value>) -> Result<String, String> {
        let template = Template::from_str(&self.file(path)?).map_err(|e| format!("{path}: {e}"))?;
        let mut names = BTreeSet::new();
        template_names(template.elements(), &mut names);
        if let Some(missing) = names.iter().find(|n| !vars.contains_key(*n)) {
            return Err(format!("{path}: template variable {missing} has no value"));
        }
        let scope: Scope = vars.clone().into_iter().collect();
        let mut out = String::new();
        self.render(template.elements(), &scope, &mut out)?;
        Ok(out)
    }

    fn operation(&self, op: &Operation, scope: &Scope) -> Result<Value, String> {
        match op {
            Operation::Unary(u) => {
                let v = self.eval(&u.expr, scope)?;
                match u.operator {
                    UnaryOperator::Not => Ok(Value::Bool(!as_bool(&v)?)),
                    UnaryOperator::Neg => Ok(number(-as_f64(&v)?)),
                }
            }
            Operation::Binary(b) => {
                let lhs = self.eval(&b.lhs_expr, scope)?;
                match b.operator {
                    BinaryOperator::And if !as_bool(&lhs)? => return Ok(Value::Bool(false)),
                    BinaryOperator::Or if as_bool(&lhs)? => return Ok(Value::Bool(true)),
                    _ => {}
                }
                let rhs = self.eval(&b.rhs_expr, scope)?;
                Ok(match b.operator {
                    BinaryOperator::And | BinaryOperator::Or => Value::Bool(as_bool(&rhs)?),
                    BinaryOperator::Eq => Value::Bool(equal(&lhs, &rhs)),
                    BinaryOperator::NotEq => Value::Bool(!equal(&lhs, &rhs)),
                    BinaryOperator::Less => Value::Bool(as_f64(&lhs)? < as_f64(&rhs)?),
                    BinaryOperator::LessEq => Value::Bool(as_f64(&lhs)? <= as_f64(&rhs)?),
                    BinaryOperator::Greater => Value::Bool(as_f64(&lhs)? > as_f64(&rhs)?),
                    BinaryOperator::GreaterEq => Value::Bool(as_f64(&lhs)? >= as_f64(&rhs)?),
                    BinaryOperator::Plus => number(as_f64(&lhs)? + as_f64(&rhs)?),
                    BinaryOperator::Minus => number(as_f64(&lhs)? - as_f64(&rhs)?),
                    BinaryOperator::Mul => number(as_f64(&lhs)? * as_f64(&rhs)?),
                    BinaryOperator::Div => number(as_f64(&lhs)? / as_f64(&rhs)?),
                    BinaryOperator::Mod => number(as_f64(&lhs)? % as_f64(&rhs)?),
                })
            }
        }
    }

    fn for_expr(&self, f: &ForExpr, scope: &Scope) -> Result<Value, String> {
        let mut list = Vec::new();
        let mut object = Map::new();
        for (k, v) in iterate(self.eval(&f.collection_expr, scope)?)? {
            let mut s = scope.clone();
            if let Some(kv) = &f.key_var {
                s.insert(kv.as_str().to_owned(), k);
            }
            s.insert(f.value_var.as_str().to_owned(), v);
            if let Some(cond) = &f.cond_expr
                && !as_bool(&self.eval(cond, &s)?)?
            {
                continue;
            }
            match &f.key_expr {
                None => list.push(self.eval(&f.value_expr, &s)?),
                Some(key_expr) => {
                    let key = as_key(&self.eval(key_expr, &s)?)?;
                    let value = self.eval(&f.value_expr, &s)?;
                    if f.grouping {
                        let group = object.entry(key).or_insert_with(|| json!([]));
                        group.as_array_mut().unwrap().push(value);
                    } else if object.insert(key.clone(), value).is_some() {
                        return Err(format!("duplicate key {key} in a for expression"));
                    }
                }
            }
        }
        Ok(match f.key_expr {
            Some(_) => Value::Object(object),
            None => Value::Array(list),
        })
    }

    /// A block's arguments and nested blocks as an object: each nested block type maps to
    /// the list of its blocks, `dynamic` blocks expanded (iterator named by `iterator` or
    /// the block type). Meta-arguments and lifecycle are left out.
    fn body(&self, body: &Body, scope: &Scope) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for structure in body.iter() {
            match structure {
                Structure::Attribute(a) => {
                    let key = a.key.as_str();
                    if ["for_each", "count", "depends_on", "provider", "providers"].contains(&key) {
                        continue;
                    }
                    let value = self
                        .eval(&a.expr, scope)
                        .map_err(|e| format!("{key}: {e}"))?;
                    out.insert(key.to_owned(), value);
                }
                Structure::Block(b) if b.identifier.as_str() == "lifecycle" => {}
                Structure::Block(b) if b.identifier.as_str() == "dynamic" => {
                    let kind = label(b, 0).ok_or("dynamic block without a type")?;
                    let for_each = attr(&b.body, "for_each")
                        .ok_or_else(|| format!("dynamic \"{kind}\" without for_each"))?;
                    let iterator = match attr(&b.body, "iterator") {
                        Some(Expression::Variable(v)) => v.as_str().to_owned(),
                        Some(other) => return Err(format!("dynamic \"{kind}\": iterator {other}")),
                        None => kind.to_owned(),
                    };
                    let content = b
                        .body
                        .blocks()
                        .find(|c| c.identifier.as_str() == "content")
                        .ok_or_else(|| format!("dynamic \"{kind}\" without content"))?;
                    let items = iterate(
                        self.eval(for_each, scope)
                            .map_err(|e| format!("dynamic \"{kind}\" for_each: {e}"))?,
                    )?;
                    let mut expanded = Vec::new();
                    for (k, v) in items {
                        let mut s = scope.clone();
                        s.insert(iterator.clone(), json!({ "key": k, "value": v }));
                        let content = self
                            .body(&content.body, &s)
                            .map_err(|e| format!("dynamic \"{kind}\": {e}"))?;
                        expanded.push(Value::Object(content));
                    }
                    push_blocks(&mut out, kind, expanded);
                }
                Structure::Block(b) => {
                    let kind = b.identifier.as_str();
                    let inner = self
                        .body(&b.body, scope)
                        .map_err(|e| format!("{kind}: {e}"))?;
                    push_blocks(&mut out, kind, vec![Value::Object(inner)]);
                }
            }
        }
        Ok(out)
    }
}

fn push_blocks(out: &mut Map<String, Value>, kind: &str, blocks: Vec<Value>) {
    let list = out.entry(kind.to_owned()).or_insert_with(|| json!([]));
    if let Value::Array(l) = list {
        l.extend(blocks);
    }
}

/// The names a template reads (roots of its interpolations).
fn template_names(elements: &[Element], out: &mut BTreeSet<String>) {
    for element in elements {
        match element {
            Element::Literal(_) => {}
            Element::Interpolation(i) => expr_names(&i.expr, out),
            Element::Directive(d) => match d.as_ref() {
                Directive::If(i) => {
                    expr_names(&i.cond_expr, out);
                    template_names(i.true_template.elements(), out);
                    if let Some(f) = &i.false_template {
                        template_names(f.elements(), out);
                    }
                }
                Directive::For(f) => expr_names(&f.collection_expr, out),
            },
        }
    }
}

fn expr_names(e: &Expression, out: &mut BTreeSet<String>) {
    match e {
        Expression::Variable(v) => {
            out.insert(v.as_str().to_owned());
        }
        Expression::Traversal(t) => expr_names(&t.expr, out),
        Expression::FuncCall(f) => f.args.iter().for_each(|a| expr_names(a, out)),
        Expression::Parenthesis(p) => expr_names(p, out),
        Expression::Conditional(c) => {
            expr_names(&c.cond_expr, out);
            expr_names(&c.true_expr, out);
            expr_names(&c.false_expr, out);
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => expr_names(&u.expr, out),
            Operation::Binary(b) => {
                expr_names(&b.lhs_expr, out);
                expr_names(&b.rhs_expr, out);
            }
        },
        Expression::Array(a) => a.iter().for_each(|x| expr_names(x, out)),
        _ => {}
    }
}

/// Pairs (key, value) of a collection: list index or map key (maps in key order).
fn iterate(v: Value) -> Result<Vec<(Value, Value)>, String> {
    match v {
        Value::Array(a) => Ok(a
            .into_iter()
            .enumerate()
            .map(|(i, x)| (json!(i), x))
            .collect()),
        Value::Object(m) => Ok(m.into_iter().map(|(k, x)| (json!(k), x)).collect()),
        other => Err(format!("cannot iterate over {}", brief(&other))),
    }
}

fn index(v: &Value, key: &Value) -> Result<Value, String> {
    match (v, key) {
        (Value::Object(m), Value::String(k)) => {
            m.get(k).cloned().ok_or_else(|| format!("no key [{k}]"))
        }
        (Value::Array(a), k) => {
            let i = as_f64(k)? as usize;
            a.get(i).cloned().ok_or_else(|| format!("no index [{i}]"))
        }
        (other, k) => Err(format!("cannot index {} with {k}", brief(other))),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| equal(p, q)))
        }
        _ => a == b,
    }
}

fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

fn as_bool(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{} is not a bool", brief(v)))
}

fn as_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "not a number".into()),
        Value::String(s) => s.parse().map_err(|_| format!("\"{s}\" is not a number")),
        other => Err(format!("{} is not a number", brief(other))),
    }
}

fn as_key(v: &Value) -> Result<String, String> {
    to_str(v)
}

fn to_str(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("{} is not a string", brief(other))),
    }
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}…", &s[..s.floor_char_boundary(80)])
    } else {
        s
    }
}

fn strings(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------
// What a resource string in a policy is: resource symbols and ARNs, classified.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    Any,
    Table(String),
    TableIndex(String),
    TableStream(String),
    Queue(String),
    Kinesis(String),
    Bus(String),
    StateMachine(String),
    Execution(String),
    LogGroup(String),
    KmsKey(String),
    Function(String),
    Secret(String),
    Unknown(String),
}

impl Reach {
    /// The one service whose actions apply to this kind of resource.
    fn service(&self) -> Option<&'static str> {
        Some(match self {
            Reach::Table(_) | Reach::TableIndex(_) | Reach::TableStream(_) => "dynamodb",
            Reach::Queue(_) => "sqs",
            Reach::Kinesis(_) => "kinesis",
            Reach::Bus(_) => "events",
            Reach::StateMachine(_) | Reach::Execution(_) => "states",
            Reach::LogGroup(_) => "logs",
            Reach::KmsKey(_) => "kms",
            Reach::Function(_) => "lambda",
            Reach::Secret(_) => "secretsmanager",
            Reach::Any | Reach::Unknown(_) => return None,
        })
    }
}

/// `<prefix><key><suffix>` with a plain key (no brackets, no wildcard).
fn keyed<'s>(s: &'s str, prefix: &str, suffix: &str) -> Option<&'s str> {
    let key = s.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!key.is_empty() && !key.contains(['[', ']', '*', '/'])).then_some(key)
}

fn classify(r: &str) -> Reach {
    let own = |s: &str| s.to_owned();
    if r == "*" {
        return Reach::Any;
    }
    if let Some(t) = keyed(r, "table:", "/index/*") {
        return Reach::TableIndex(own(t));
    }
    for (prefix, suffix, make) in [
        ("table:", "", Reach::Table as fn(String) -> Reach),
        ("table-stream:", "", Reach::TableStream),
        ("kms-key:", "", Reach::KmsKey),
        ("aws_sqs_queue.this[", "].arn", Reach::Queue),
        ("aws_kinesis_stream.this[", "].arn", Reach::Kinesis),
        ("aws_cloudwatch_event_bus.", ".arn", Reach::Bus),
        (
            "aws_cloudwatch_log_group.function[",
            "].arn:*",
            Reach::LogGroup,
        ),
        (
            "aws_cloudwatch_log_group.function[",
            "].arn",
            Reach::LogGroup,
        ),
        ("aws_kms_key.", ".arn", Reach::KmsKey),
        ("aws_lambda_function.this[", "].arn", Reach::Function),
        ("aws_secretsmanager_secret.this[", "].arn", Reach::Secret),
    ] {
        if let Some(key) = keyed(r, prefix, suffix) {
            return make(own(key));
        }
    }
    let states = format!("arn:aws:states:{PRIMARY}:{ACCOUNT}:");
    if let Some(m) = keyed(r, &format!("{states}stateMachine:{NAME_PREFIX}-"), "") {
        return Reach::StateMachine(own(m));
    }
    if let Some(m) = r
        .strip_prefix(&format!("{states}execution:{NAME_PREFIX}-"))
        .and_then(|m| m.strip_suffix(":*"))
        .filter(|m| !m.contains([':', '*', '/']))
    {
        return Reach::Execution(own(m));
    }
    Reach::Unknown(own(r))
}

// ---------------------------------------------------------------------------------------
// Check: one Lambda per declared function, one binary per Lambda.
// ---------------------------------------------------------------------------------------

/// The Lambda binaries of the function crates (declared tools left out).
fn function_binaries() -> BTreeSet<String> {
    static BINS: OnceLock<BTreeSet<String>> = OnceLock::new();
    BINS.get_or_init(|| e2e::workspace_binaries().into_keys().collect())
        .clone()
}

/// The root module passes the declaration file to every regional and global module; the
/// one `aws_lambda_function` (in the regional module) is `for_each` over exactly the
/// declared functions, which are exactly the binaries.
fn check_lambdas(infra: &Infra, binaries: &BTreeSet<String>) -> Vec<String> {
    let mut v = Vec::new();
    let declared: BTreeSet<String> = infra.functions().keys().cloned().collect();

    match infra.root_module(&[PRIMARY, SECONDARY, THIRD]) {
        Err(e) => v.push(format!("root module: {e}")),
        Ok(root) => {
            let mut regional_calls = 0;
            for (_, call) in root.module.blocks("module") {
                let name = label(call, 0).unwrap_or("");
                let source =
                    attr(&call.body, "source").and_then(|s| root.eval(s, &Scope::new()).ok());
                let source = source.as_ref().and_then(Value::as_str).unwrap_or("");
                if source != "./modules/regional" && source != "./modules/global" {
                    continue;
                }
                regional_calls += usize::from(source == "./modules/regional");
                match attr(&call.body, "declaration").map(|d| root.eval(d, &Scope::new())) {
                    None => v.push(format!("module \"{name}\" ({source}) is not given the declaration")),
                    Some(Err(e)) => v.push(format!("module \"{name}\": declaration: {e}")),
                    Some(Ok(d)) if !equal(&d, &infra.declaration) => v.push(format!(
                        "module \"{name}\" ({source}) is given something other than infra/declaration.json as its declaration"
                    )),
                    Some(Ok(_)) => {}
                }
            }
            if regional_calls == 0 {
                v.push("the root module instantiates no ./modules/regional".into());
            }
        }
    }

    let lambdas = infra.resources("aws_lambda_function");
    if lambdas.len() != 1 {
        let found: Vec<String> = lambdas
            .iter()
            .map(|(_, file, name, _)| format!("aws_lambda_function.{name} in infra/{file}"))
            .collect();
        v.push(format!(
            "expected exactly one aws_lambda_function (for_each over the declared functions), found {}: {found:?}",
            lambdas.len()
        ));
    }
    let regional = match infra.regional() {
        Ok(r) => r,
        Err(e) => {
            v.push(format!("regional module: {e}"));
            return v;
        }
    };
    for (module, file, name, block) in lambdas {
        if module != "modules/regional" {
            v.push(format!(
                "aws_lambda_function.{name} (infra/{file}) is outside the regional module"
            ));
            continue;
        }
        let keys: BTreeSet<String> = match regional.instances(block) {
            Ok(Some(list)) => list.into_iter().map(|(k, _)| k).collect(),
            Ok(None) => {
                v.push(format!(
                    "aws_lambda_function.{name} is one function, not one per declared function"
                ));
                continue;
            }
            Err(e) => {
                v.push(format!("aws_lambda_function.{name}: for_each: {e}"));
                continue;
            }
        };
        for f in declared.difference(&keys) {
            v.push(format!(
                "declared function {f} has no aws_lambda_function.{name}"
            ));
        }
        for f in keys.difference(&declared) {
            v.push(format!(
                "aws_lambda_function.{name}[{f}] is not a declared function"
            ));
        }
        for f in binaries.difference(&keys) {
            v.push(format!(
                "binary {f} has no Lambda (aws_lambda_function.{name})"
            ));
        }
        for f in keys.difference(binaries) {
            v.push(format!(
                "Lambda aws_lambda_function.{name}[{f}] has no binary"
            ));
        }
    }
    v
}

/// A block of the regional module with its instances (each `for_each` key and its scope):
/// where every per-function check starts.
struct Instanced<'a> {
    regional: Eval<'a>,
    block: &'a Block,
    instances: Vec<(String, Scope)>,
}

/// `<kind> "<ty>" "<name>"` of the regional module, which must be `for_each` over keys.
fn regional_instances<'a>(
    infra: &'a Infra,
    kind: &str,
    ty: &str,
    name: &str,
) -> Result<Instanced<'a>, String> {
    let regional = infra
        .regional()
        .map_err(|e| format!("regional module: {e}"))?;
    let module: &'a Module = regional.module;
    let block = module
        .find(kind, ty, name)
        .ok_or_else(|| format!("no {kind} {ty}.{name} in the regional module"))?;
    let instances = regional
        .instances(block)
        .map_err(|e| format!("{ty}.{name}: for_each: {e}"))?
        .ok_or_else(|| format!("{ty}.{name} is one block, not one per key (no for_each)"))?;
    Ok(Instanced {
        regional,
        block,
        instances,
    })
}

// ---------------------------------------------------------------------------------------
// Check: every route behind the authorizer but the ones declared public.
// ---------------------------------------------------------------------------------------

/// A route is public (`authorization_type = "NONE"`) exactly when the declaration says
/// `"auth": "none"` for its function; every other route goes through the JWT authorizer.
fn check_route_authorization(infra: &Infra) -> Vec<String> {
    let mut v = Vec::new();
    let Instanced {
        regional,
        block,
        instances,
    } = match regional_instances(infra, "resource", "aws_apigatewayv2_route", "function") {
        Ok(i) => i,
        Err(e) => return vec![e],
    };
    for (f, scope) in &instances {
        let auth = infra.functions()[f]
            .get("auth")
            .and_then(Value::as_str)
            .unwrap_or("jwt");
        if !["jwt", "none"].contains(&auth) {
            v.push(format!("{f}: auth {auth} is neither jwt nor none"));
        }
        let get = |a: &str| attr(&block.body, a).map(|e| regional.eval(e, scope));
        let (kind, authorizer) = (get("authorization_type"), get("authorizer_id"));
        let public = auth == "none";
        match (&kind, &authorizer) {
            (Some(Ok(Value::String(k))), Some(Ok(Value::Null)) | None) if public && k == "NONE" => {}
            (Some(Ok(Value::String(k))), Some(Ok(Value::String(a))))
                if !public && k == "JWT" && a.starts_with("aws_apigatewayv2_authorizer.jwt") => {}
            _ => v.push(format!(
                "route of {f} (auth {auth}): authorization_type {kind:?}, authorizer_id {authorizer:?}"
            )),
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Check: one architecture for the build and the deploy.
// ---------------------------------------------------------------------------------------

/// Where `make build` (infra/build.sh) records the architecture it built the zips for, as
/// the evaluator's `file` names it from the root module's default `lambda_artifacts_dir`.
const BUILT_ARCHITECTURE: &str = "target/lambda/architecture";

/// Every Lambda runs the declaration's `lambda.runtime` and `lambda.architecture` (the
/// setting infra/build.sh builds for) from the one zip of `lambda.package`, with its own
/// name as the handler, and a precondition refuses zips that were recorded as built for
/// another architecture, or not recorded at all.
fn check_architecture(infra: &Infra) -> Vec<String> {
    let mut v = Vec::new();
    let lambda = &infra.declaration["lambda"];
    let (Some(arch), Some(runtime), Some(package)) = (
        lambda["architecture"].as_str(),
        lambda["runtime"].as_str(),
        lambda["package"].as_str(),
    ) else {
        return vec![
            "infra/declaration.json has no lambda.architecture, lambda.runtime and lambda.package"
                .into(),
        ];
    };
    if !["arm64", "x86_64"].contains(&arch) {
        v.push(format!(
            "lambda.architecture {arch} is neither arm64 nor x86_64"
        ));
    }
    let Instanced {
        regional,
        block,
        instances,
    } = match regional_instances(infra, "resource", "aws_lambda_function", "this") {
        Ok(i) => i,
        Err(e) => return vec![e],
    };
    let conditions: Vec<&Expression> = block
        .body
        .blocks()
        .filter(|b| b.identifier.as_str() == "lifecycle")
        .flat_map(|l| {
            l.body
                .blocks()
                .filter(|b| b.identifier.as_str() == "precondition")
        })
        .filter_map(|p| attr(&p.body, "condition"))
        .collect();
    for (f, scope) in &instances {
        for (attribute, want) in [
            ("architectures", json!([arch])),
            ("runtime", json!(runtime)),
            // The one binary starts the function its handler names (functions/bootstrap).
            ("handler", json!(f)),
        ] {
            match attr(&block.body, attribute).map(|e| regional.eval(e, scope)) {
                Some(Ok(got)) if got == want => {}
                other => v.push(format!(
                    "aws_lambda_function.this[{f}].{attribute} is {other:?}, not the declaration's {want}"
                )),
            }
        }
        let zip = format!("/{package}/bootstrap.zip");
        match attr(&block.body, "filename").map(|e| regional.eval(e, scope)) {
            Some(Ok(Value::String(path))) if path.ends_with(&zip) => {}
            other => v.push(format!(
                "aws_lambda_function.this[{f}].filename is {other:?}, not the one zip <artifacts>{zip}"
            )),
        }
    }
    // The zips as built: recorded for this architecture, for another, or not recorded. One
    // instance shows it: the precondition is the same block for every function.
    if let Some((f, scope)) = instances.first() {
        let holds = |built: Option<&str>| -> bool {
            let sources = match built {
                Some(a) => {
                    Sources(infra.files.clone()).with_file(BUILT_ARCHITECTURE, &format!("{a}\n"))
                }
                None => Sources(infra.files.clone()),
            };
            let Ok(other) = Infra::parse(&sources) else {
                return false;
            };
            let Ok(r) = other.regional() else {
                return false;
            };
            conditions
                .iter()
                .all(|c| matches!(r.eval(c, scope), Ok(Value::Bool(true))))
        };
        let other_arch = if arch == "arm64" { "x86_64" } else { "arm64" };
        if conditions.is_empty() || !holds(Some(arch)) || holds(Some(other_arch)) || holds(None) {
            v.push(format!(
                "aws_lambda_function.this[{f}] does not refuse zips built for another architecture than {arch} (a precondition on infra/{BUILT_ARCHITECTURE})"
            ));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Check: each function's IAM policy, evaluated, against what the declaration gives it.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Statement {
    sid: String,
    effect: String,
    actions: BTreeSet<String>,
    resources: Vec<String>,
    not_actions: bool,
    not_resources: bool,
    condition_keys: BTreeSet<String>,
    /// The `condition` blocks as evaluated (test, variable, values).
    conditions: Vec<Value>,
}

impl Statement {
    fn from_block(v: &Value) -> Statement {
        let conditions = v
            .get("condition")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Statement {
            sid: v
                .get("sid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            effect: v
                .get("effect")
                .and_then(Value::as_str)
                .unwrap_or("Allow")
                .to_owned(),
            actions: strings(v.get("actions")),
            resources: strings(v.get("resources")).into_iter().collect(),
            not_actions: v.get("not_actions").is_some_and(|x| !x.is_null()),
            not_resources: v.get("not_resources").is_some_and(|x| !x.is_null()),
            condition_keys: conditions
                .iter()
                .filter_map(|c| c.get("variable").and_then(Value::as_str).map(str::to_owned))
                .collect(),
            conditions,
        }
    }

    /// The statement as IAM receives it, with this evaluation's resource symbols written as
    /// the ARNs Terraform would put there (example account, primary region).
    fn to_iam_json(&self) -> Value {
        let mut condition = Map::new();
        for c in &self.conditions {
            let test = c.get("test").and_then(Value::as_str).unwrap_or("?");
            let variable = c.get("variable").and_then(Value::as_str).unwrap_or("?");
            let entry = condition
                .entry(test.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(
                    variable.to_owned(),
                    c.get("values").cloned().unwrap_or(Value::Null),
                );
            }
        }
        let mut doc = json!({
            "Sid": self.sid,
            "Effect": self.effect,
            "Action": self.actions.iter().collect::<Vec<_>>(),
            "Resource": self.resources.iter().map(|r| example_arn(r)).collect::<Vec<_>>(),
        });
        if !condition.is_empty() {
            doc["Condition"] = Value::Object(condition);
        }
        doc
    }
}

/// The ARN Terraform would give a resource symbol of this evaluation, in the example account
/// and primary region; an ARN or `*` as it is. A symbol it cannot place stays as it is, which
/// the IAM linter then reports.
fn example_arn(symbol: &str) -> String {
    // `<resource>.arn:*`: everything under it (a function's versions, a log group's streams).
    if let Some(base) = symbol.strip_suffix(":*")
        && !matches!(classify(base), Reach::Unknown(_) | Reach::Any)
    {
        return format!("{}:*", example_arn(base));
    }
    let at = |service: &str| format!("arn:aws:{service}:{PRIMARY}:{ACCOUNT}");
    let named = |s: &str| format!("{NAME_PREFIX}-{s}");
    match classify(symbol) {
        Reach::Table(t) => format!("{}:table/{}", at("dynamodb"), named(&t)),
        Reach::TableIndex(t) => format!("{}:table/{}/index/*", at("dynamodb"), named(&t)),
        Reach::TableStream(t) => format!(
            "{}:table/{}/stream/2026-01-01T00:00:00.000",
            at("dynamodb"),
            named(&t)
        ),
        Reach::Queue(q) => format!("{}:{}", at("sqs"), named(&q)),
        Reach::Kinesis(k) => format!("{}:stream/{}", at("kinesis"), named(&k)),
        Reach::Bus(_) => format!("{}:event-bus/{NAME_PREFIX}", at("events")),
        Reach::LogGroup(f) => format!("{}:log-group:/aws/lambda/{}", at("logs"), named(&f)),
        Reach::KmsKey(k) if k == "tables" => {
            format!("{}:key/mrk-1234abcd12ab34cd56ef1234567890ab", at("kms"))
        }
        Reach::KmsKey(_) => format!("{}:key/1234abcd-12ab-34cd-56ef-1234567890ab", at("kms")),
        Reach::Function(f) => format!("{}:function:{}", at("lambda"), named(&f)),
        Reach::Secret(n) => format!("{}:secret:{}-AbCdEf", at("secretsmanager"), named(&n)),
        Reach::Any | Reach::StateMachine(_) | Reach::Execution(_) | Reach::Unknown(_) => {
            symbol.to_owned()
        }
    }
}

/// X-Ray has no resource-level permissions: its statement stands on `*`. Another action
/// that only works on `*` gets its own constant, with its reason, not a looser rule.
const XRAY_ON_ANY: [&str; 2] = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];

/// Answering a task token: the Service Authorization Reference lists no resource type for
/// these, so IAM evaluates them against `*` only; a statement naming ARNs does not allow
/// them. They may stand on `*`, each one only for a function the declaration gives it to.
const TASK_TOKEN_ACTIONS: [&str; 3] = [
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
];

/// DynamoDB actions that may use a table's indexes.
const INDEX_ACTIONS: [&str; 2] = ["dynamodb:Query", "dynamodb:Scan"];

const STREAM_READ: [&str; 3] = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
];

/// Listing streams has no resource type either: on `*`, only for a function that reads a
/// table's stream (its mapping lists them).
const LIST_STREAMS: &str = "dynamodb:ListStreams";

/// Each declared function's policy: the statements of
/// `data "aws_iam_policy_document" "function"`, evaluated with each.key/each.value bound to
/// that function. Also checks that this document is the one attached to the function's
/// role, and that nothing else is attached to it.
fn function_policies(infra: &Infra) -> Result<(Policies, Vec<String>), String> {
    let policies = policy_documents(infra, "function")?;
    let regional = infra.regional()?;
    let module = regional.module;
    let mut v = Vec::new();

    // The evaluated document is what each function's role gets, and all it gets.
    let attached = |ty: &str,
                    name: &str,
                    attribute: &str,
                    expect: &dyn Fn(&str) -> String,
                    v: &mut Vec<String>| {
        let Some(block) = module.find("resource", ty, name) else {
            v.push(format!("no {ty}.{name} in the regional module"));
            return;
        };
        match regional.instances(block) {
            Ok(Some(list)) => {
                for (f, scope) in list {
                    let got = attr(&block.body, attribute).map(|e| regional.eval(e, &scope));
                    let want = expect(&f);
                    match got {
                        Some(Ok(Value::String(s))) if s == want => {}
                        other => v.push(format!(
                            "{ty}.{name}[{f}].{attribute} is {other:?}, not {want}"
                        )),
                    }
                }
            }
            other => v.push(format!("{ty}.{name} is not one per function: {other:?}")),
        }
    };
    attached(
        "aws_iam_role_policy",
        "function",
        "policy",
        &|f| format!("data.aws_iam_policy_document.function[{f}].json"),
        &mut v,
    );
    attached(
        "aws_iam_role_policy",
        "function",
        "role",
        &|f| format!("aws_iam_role.function[{f}].id"),
        &mut v,
    );
    attached(
        "aws_lambda_function",
        "this",
        "role",
        &|f| format!("aws_iam_role.function[{f}].arn"),
        &mut v,
    );
    if let Some(role) = module.find("resource", "aws_iam_role", "function")
        && (attr(&role.body, "managed_policy_arns").is_some()
            || role
                .body
                .blocks()
                .any(|b| b.identifier.as_str() == "inline_policy"))
    {
        v.push("aws_iam_role.function carries policies of its own (managed_policy_arns or inline_policy)".into());
    }
    for ty in [
        "aws_iam_role_policy",
        "aws_iam_role_policy_attachment",
        "aws_iam_policy_attachment",
    ] {
        for (_, file, name, block) in infra.resources(ty) {
            if ty == "aws_iam_role_policy" && name == "function" {
                continue;
            }
            let mut names = BTreeSet::new();
            for a in block.body.attributes() {
                collect_refs(&a.expr, &mut names);
            }
            if names.contains("aws_iam_role.function") {
                v.push(format!(
                    "{ty}.{name} (infra/{file}) attaches more to the functions' roles"
                ));
            }
        }
    }
    Ok((policies, v))
}

/// `type.name` of every resource reference in an expression.
fn collect_refs(e: &Expression, out: &mut BTreeSet<String>) {
    match e {
        Expression::Traversal(t) => {
            if let (Expression::Variable(root), Some(TraversalOperator::GetAttr(name))) =
                (&t.expr, t.operators.first())
            {
                out.insert(format!("{}.{}", root.as_str(), name.as_str()));
            }
            for op in &t.operators {
                if let TraversalOperator::Index(i) = op {
                    collect_refs(i, out);
                }
            }
        }
        Expression::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        Expression::Object(o) => o.values().for_each(|x| collect_refs(x, out)),
        Expression::FuncCall(f) => f.args.iter().for_each(|x| collect_refs(x, out)),
        Expression::Parenthesis(p) => collect_refs(p, out),
        Expression::Conditional(c) => {
            collect_refs(&c.true_expr, out);
            collect_refs(&c.false_expr, out);
        }
        Expression::ForExpr(f) => {
            collect_refs(&f.collection_expr, out);
            collect_refs(&f.value_expr, out);
        }
        Expression::TemplateExpr(t) => {
            if let Ok(t) = Template::from_expr(t) {
                for el in t.elements() {
                    if let Element::Interpolation(i) = el {
                        collect_refs(&i.expr, out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// What the declaration gives one function.
struct Grant {
    tables: BTreeMap<String, BTreeSet<String>>,
    streams: BTreeSet<String>,
    consumed_queues: BTreeSet<String>,
    failure_queues: BTreeSet<String>,
    kinesis_put: BTreeSet<String>,
    kinesis_read: BTreeSet<String>,
    bus: BTreeSet<String>,
    state_machines: BTreeMap<String, BTreeSet<String>>,
    secrets: BTreeMap<String, BTreeSet<String>>,
}

impl Grant {
    fn of(spec: &Value) -> Grant {
        let sources = spec
            .get("event_sources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let from_sources = |key: &str| -> BTreeSet<String> {
            sources
                .iter()
                .filter_map(|s| s.get(key).and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        };
        let per_name = |key: &str| -> BTreeMap<String, BTreeSet<String>> {
            spec.get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, a)| (k.clone(), strings(Some(a))))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut kinesis_read = from_sources("kinesis_stream");
        kinesis_read.extend(strings(spec.get("kinesis")));
        Grant {
            tables: per_name("tables"),
            streams: strings(spec.get("streams")),
            consumed_queues: from_sources("queue"),
            failure_queues: from_sources("on_failure_queue"),
            kinesis_put: strings(spec.get("kinesis_put")),
            kinesis_read,
            bus: strings(spec.get("bus")),
            state_machines: per_name("state_machines"),
            secrets: per_name("secrets"),
        }
    }

    fn uses_table_key(&self) -> bool {
        !self.tables.is_empty() || !self.streams.is_empty()
    }

    fn uses_regional_key(&self) -> bool {
        !(self.consumed_queues.is_empty()
            && self.failure_queues.is_empty()
            && self.kinesis_put.is_empty()
            && self.kinesis_read.is_empty()
            && self.state_machines.is_empty()
            && self.secrets.is_empty())
    }
}

/// One function's evaluated policy against what the declaration gives it.
///
/// Actions: `*` and whole services (`sqs:*`) are refused; a wildcard inside one operation
/// family (`kms:GenerateDataKey*`, `kms:ReEncrypt*`) is accepted: those name variants of
/// one operation on the one key they are granted on, and only through the service
/// (kms:ViaService). Resources: `*` only for the X-Ray statement; every other resource
/// must be attributed to a declared part, and be one this function is given.
fn policy_violations(f: &str, spec: &Value, statements: &[Statement]) -> Vec<String> {
    let mut v = Vec::new();
    let grant = Grant::of(spec);
    let mut table_actions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut bus_actions = BTreeSet::new();
    let mut machine_actions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut secrets_reached = BTreeSet::new();
    for s in statements {
        let at = format!("{f}: statement {:?}", s.sid);
        if s.effect == "Deny" {
            continue;
        }
        if s.not_actions || s.not_resources {
            v.push(format!(
                "{at}: NotAction/NotResource in an Allow grants everything else"
            ));
        }
        if s.resources.is_empty() {
            v.push(format!("{at}: no resources"));
        }
        for a in &s.actions {
            if a == "*" || a.ends_with(":*") || !a.contains(':') {
                v.push(format!("{at}: wildcard action {a}"));
            }
        }
        for r in &s.resources {
            let reach = classify(r);
            if let Some(service) = reach.service() {
                for a in &s.actions {
                    if a.split(':').next() != Some(service) {
                        v.push(format!("{at}: action {a} on {r}, a {service} resource"));
                    }
                }
            }
            let not_given = |what: &str| {
                format!("{at}: reaches {what}, which the declaration does not give {f}")
            };
            match &reach {
                Reach::Any
                    if s.actions
                        .iter()
                        .all(|a| TASK_TOKEN_ACTIONS.contains(&a.as_str())) =>
                {
                    // Counted against the machines whose declaration grants them.
                    for a in &s.actions {
                        let machines: Vec<&String> = grant
                            .state_machines
                            .iter()
                            .filter(|(_, actions)| actions.contains(a))
                            .map(|(m, _)| m)
                            .collect();
                        if machines.is_empty() {
                            v.push(not_given(&format!("{a} (on *)")));
                        }
                        for m in machines {
                            machine_actions
                                .entry(m.clone())
                                .or_default()
                                .insert(a.clone());
                        }
                    }
                }
                Reach::Any if s.actions.iter().all(|a| a == LIST_STREAMS) => {
                    if grant.streams.is_empty() {
                        v.push(not_given(&format!(
                            "{LIST_STREAMS} (on *): it reads no table stream"
                        )));
                    }
                }
                Reach::Any => {
                    if !s.actions.iter().all(|a| XRAY_ON_ANY.contains(&a.as_str())) {
                        v.push(format!(
                            "{at}: resource * for {:?} (only actions without a resource type may use *: X-Ray, task-token answers, ListStreams)",
                            s.actions
                        ));
                    }
                }
                Reach::Table(t) | Reach::TableIndex(t) => {
                    if !grant.tables.contains_key(t) {
                        v.push(not_given(&format!("table {t}")));
                    }
                    // Only Query and Scan read indexes: index ARNs only in their statements.
                    if matches!(reach, Reach::TableIndex(_))
                        && !s
                            .actions
                            .iter()
                            .any(|a| INDEX_ACTIONS.contains(&a.as_str()))
                    {
                        v.push(format!(
                            "{at}: indexes of table {t} for {:?}, none of which reads an index",
                            s.actions
                        ));
                    }
                    table_actions
                        .entry(t.clone())
                        .or_default()
                        .extend(s.actions.iter().cloned());
                }
                Reach::TableStream(t) => {
                    if !grant.streams.contains(t) {
                        v.push(not_given(&format!("the stream of table {t}")));
                    }
                    for a in &s.actions {
                        if !STREAM_READ.contains(&a.as_str()) {
                            v.push(format!(
                                "{at}: {a} on the stream of table {t} (streams are only read)"
                            ));
                        }
                    }
                }
                Reach::Queue(q) => {
                    if !grant.consumed_queues.contains(q) && !grant.failure_queues.contains(q) {
                        v.push(not_given(&format!("queue {q}")));
                    }
                    for a in &s.actions {
                        let ok = if a == "sqs:SendMessage" {
                            grant.failure_queues.contains(q)
                        } else {
                            grant.consumed_queues.contains(q)
                        };
                        if !ok {
                            v.push(format!(
                                "{at}: {a} on queue {q}, which {f} does not {}",
                                if a == "sqs:SendMessage" {
                                    "send failures to"
                                } else {
                                    "consume"
                                }
                            ));
                        }
                    }
                }
                Reach::Kinesis(k) => {
                    if !grant.kinesis_put.contains(k) && !grant.kinesis_read.contains(k) {
                        v.push(not_given(&format!("Kinesis stream {k}")));
                    }
                    for a in &s.actions {
                        let put = a == "kinesis:PutRecord" || a == "kinesis:PutRecords";
                        let ok = if put {
                            grant.kinesis_put.contains(k)
                        } else {
                            grant.kinesis_read.contains(k)
                        };
                        if !ok {
                            v.push(format!(
                                "{at}: {a} on Kinesis stream {k}, which {f} does not {}",
                                if put { "write" } else { "read" }
                            ));
                        }
                    }
                }
                Reach::Bus(b) => {
                    if grant.bus.is_empty() {
                        v.push(not_given(&format!("bus {b}")));
                    }
                    bus_actions.extend(s.actions.iter().cloned());
                }
                Reach::StateMachine(m) | Reach::Execution(m) => {
                    if !grant.state_machines.contains_key(m) {
                        v.push(not_given(&format!("state machine {m}")));
                    }
                    for a in s
                        .actions
                        .iter()
                        .filter(|a| TASK_TOKEN_ACTIONS.contains(&a.as_str()))
                    {
                        v.push(format!(
                            "{at}: {a} on {r}: the action has no resource type, so IAM allows it only on * and this statement allows nothing"
                        ));
                    }
                    machine_actions
                        .entry(m.clone())
                        .or_default()
                        .extend(s.actions.iter().cloned());
                }
                Reach::LogGroup(g) => {
                    if g != f {
                        v.push(not_given(&format!("the log group of {g}")));
                    }
                }
                Reach::KmsKey(k) => {
                    let needed = match k.as_str() {
                        "tables" => grant.uses_table_key(),
                        "regional" => grant.uses_regional_key(),
                        _ => false,
                    };
                    if !needed {
                        v.push(format!(
                            "{at}: KMS key {k}, which encrypts nothing {f} uses"
                        ));
                    }
                    if !s.condition_keys.contains("kms:ViaService") {
                        v.push(format!("{at}: KMS key {k} usable directly, not only through its services (kms:ViaService)"));
                    }
                }
                Reach::Function(g) => v.push(not_given(&format!("function {g}"))),
                Reach::Secret(n) => {
                    secrets_reached.insert(n.clone());
                    match grant.secrets.get(n) {
                        None => v.push(not_given(&format!("secret {n}"))),
                        Some(want) => {
                            let got: BTreeSet<String> = s.actions.iter().cloned().collect();
                            if &got != want {
                                v.push(format!(
                                    "{at}: actions on secret {n} are {got:?}, the declaration gives {want:?}"
                                ));
                            }
                        }
                    }
                }
                Reach::Unknown(r) => {
                    v.push(format!(
                        "{at}: resource {r} is not one this test can attribute to a declared part"
                    ));
                }
            }
        }
    }
    for n in grant
        .secrets
        .keys()
        .filter(|n| !secrets_reached.contains(*n))
    {
        v.push(format!(
            "{f}: the declaration gives secret {n}, which no statement grants"
        ));
    }
    // The DynamoDB, bus and Step Functions actions are exactly the declared ones.
    let tables: BTreeSet<&String> = grant.tables.keys().chain(table_actions.keys()).collect();
    for t in tables {
        let got = table_actions.get(t).cloned().unwrap_or_default();
        let want = grant.tables.get(t).cloned().unwrap_or_default();
        if got != want {
            v.push(format!(
                "{f}: DynamoDB actions on table {t} are {got:?}, the declaration gives {want:?}"
            ));
        }
    }
    if bus_actions != grant.bus {
        v.push(format!(
            "{f}: actions on the bus are {bus_actions:?}, the declaration gives {:?}",
            grant.bus
        ));
    }
    let machines: BTreeSet<&String> = grant
        .state_machines
        .keys()
        .chain(machine_actions.keys())
        .collect();
    for m in machines {
        let got = machine_actions.get(m).cloned().unwrap_or_default();
        let want = grant.state_machines.get(m).cloned().unwrap_or_default();
        if got != want {
            v.push(format!(
                "{f}: actions on state machine {m} are {got:?}, the declaration gives {want:?}"
            ));
        }
    }
    v
}

fn check_function_policies(infra: &Infra) -> Vec<String> {
    let (policies, mut v) = match function_policies(infra) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    for f in infra.functions().keys() {
        if !policies.contains_key(f) {
            v.push(format!("{f} has no data.aws_iam_policy_document.function"));
        }
    }
    for (f, statements) in &policies {
        match infra.functions().get(f) {
            Some(spec) => v.extend(policy_violations(f, spec, statements)),
            None => v.push(format!("policy for undeclared function {f}")),
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Check: event-source mappings.
// ---------------------------------------------------------------------------------------

/// Every declared event source has its mapping and every mapping is declared; each reports
/// batch item failures; a stream mapping (DynamoDB or Kinesis) bisects a failing batch,
/// bounds its retries and record age, and sends what it gives up on to a queue.
fn check_mappings(infra: &Infra) -> Vec<String> {
    let mut v = Vec::new();
    let regional = match infra.regional() {
        Ok(r) => r,
        Err(e) => return vec![format!("regional module: {e}")],
    };
    let mut built = BTreeSet::new();
    for (_, file, name, block) in infra.resources("aws_lambda_event_source_mapping") {
        let instances = match regional.instances(block) {
            Ok(Some(list)) => list,
            Ok(None) => vec![(String::new(), Scope::new())],
            Err(e) => {
                v.push(format!(
                    "aws_lambda_event_source_mapping.{name} (infra/{file}): {e}"
                ));
                continue;
            }
        };
        for (key, scope) in instances {
            let at = format!("aws_lambda_event_source_mapping.{name}[{key}]");
            let body = match regional.body(&block.body, &scope) {
                Ok(b) => b,
                Err(e) => {
                    v.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let get = |k: &str| body.get(k).cloned().unwrap_or(Value::Null);
            let function = match classify(get("function_name").as_str().unwrap_or("")) {
                Reach::Function(f) => f,
                _ => {
                    v.push(format!(
                        "{at}: function_name {} is not a declared function's Lambda",
                        get("function_name")
                    ));
                    continue;
                }
            };
            let source = classify(get("event_source_arn").as_str().unwrap_or(""));
            let stream = match &source {
                Reach::Queue(q) => {
                    built.insert((function.clone(), format!("queue:{q}")));
                    false
                }
                Reach::Kinesis(s) => {
                    built.insert((function.clone(), format!("kinesis:{s}")));
                    true
                }
                Reach::TableStream(t) => {
                    built.insert((function.clone(), format!("table-stream:{t}")));
                    true
                }
                other => {
                    v.push(format!(
                        "{at}: event source {other:?} is not a declared queue or stream"
                    ));
                    continue;
                }
            };
            if !strings(Some(&get("function_response_types"))).contains("ReportBatchItemFailures") {
                v.push(format!(
                    "{at} ({source:?}): no function_response_types = [\"ReportBatchItemFailures\"]"
                ));
            }
            if !stream {
                continue;
            }
            if get("bisect_batch_on_function_error") != Value::Bool(true) {
                v.push(format!(
                    "{at} ({source:?}): bisect_batch_on_function_error is not true"
                ));
            }
            match get("maximum_retry_attempts").as_i64() {
                Some(n) if (0..=10_000).contains(&n) => {}
                _ => v.push(format!(
                    "{at} ({source:?}): maximum_retry_attempts {} is not bounded",
                    get("maximum_retry_attempts")
                )),
            }
            match get("maximum_record_age_in_seconds").as_i64() {
                Some(n) if (60..=604_800).contains(&n) => {}
                _ => v.push(format!(
                    "{at} ({source:?}): maximum_record_age_in_seconds {} is not bounded",
                    get("maximum_record_age_in_seconds")
                )),
            }
            let destination = body
                .get("destination_config")
                .and_then(|d| d.get(0))
                .and_then(|d| d.get("on_failure"))
                .and_then(|d| d.get(0))
                .and_then(|d| d.get("destination_arn"))
                .and_then(Value::as_str)
                .map(classify);
            if !matches!(destination, Some(Reach::Queue(_))) {
                v.push(format!(
                    "{at} ({source:?}): no destination_config on_failure queue ({destination:?})"
                ));
            }
        }
    }
    let mut declared = BTreeSet::new();
    for (f, spec) in infra.functions() {
        for s in spec
            .get("event_sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let what = if let Some(q) = s.get("queue").and_then(Value::as_str) {
                format!("queue:{q}")
            } else if let Some(k) = s.get("kinesis_stream").and_then(Value::as_str) {
                format!("kinesis:{k}")
            } else if let Some(t) = s.get("table_stream").and_then(Value::as_str) {
                format!("table-stream:{t}")
            } else {
                format!("unknown source {s}")
            };
            declared.insert((f.clone(), what));
        }
    }
    for (f, what) in declared.difference(&built) {
        v.push(format!(
            "{f}: declared event source {what} has no event-source mapping"
        ));
    }
    for (f, what) in built.difference(&declared) {
        v.push(format!(
            "{f}: event-source mapping from {what} is not declared"
        ));
    }
    v
}

// ---------------------------------------------------------------------------------------
// Check: tables.
// ---------------------------------------------------------------------------------------

/// Every declared table is an `aws_dynamodb_table` with point-in-time recovery and, in a
/// deployment to one, two or three regions, a replica with point-in-time recovery in every
/// region but the table's own (the primary).
fn check_tables(infra: &Infra) -> Vec<String> {
    let mut v = Vec::new();
    let declared: BTreeSet<String> = infra.declaration["tables"]
        .as_object()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    let tables = infra.resources("aws_dynamodb_table");
    if tables.is_empty() {
        v.push("no aws_dynamodb_table".into());
    }
    for regions in [
        &[PRIMARY][..],
        &[PRIMARY, SECONDARY],
        &[PRIMARY, SECONDARY, THIRD],
    ] {
        let global = match infra.global(regions) {
            Ok(g) => g,
            Err(e) => {
                v.push(format!("global module ({regions:?}): {e}"));
                continue;
            }
        };
        let mut built = BTreeSet::new();
        for (module, file, name, block) in &tables {
            if *module != "modules/global" {
                v.push(format!("aws_dynamodb_table.{name} (infra/{file}) is not a global table of the global module"));
                continue;
            }
            let instances = match global.instances(block) {
                Ok(Some(list)) => list,
                Ok(None) => vec![(name.to_string(), Scope::new())],
                Err(e) => {
                    v.push(format!("aws_dynamodb_table.{name}: {e}"));
                    continue;
                }
            };
            for (key, scope) in instances {
                let at = format!("aws_dynamodb_table.{name}[{key}] in {regions:?}");
                built.insert(key.clone());
                let body = match global.body(&block.body, &scope) {
                    Ok(b) => b,
                    Err(e) => {
                        v.push(format!("{at}: {e}"));
                        continue;
                    }
                };
                let pitr = body
                    .get("point_in_time_recovery")
                    .and_then(|p| p.get(0))
                    .and_then(|p| p.get("enabled"));
                if pitr != Some(&Value::Bool(true)) {
                    v.push(format!(
                        "{at}: no point_in_time_recovery {{ enabled = true }}"
                    ));
                }
                let replicas = body
                    .get("replica")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut replica_regions = BTreeSet::new();
                for r in &replicas {
                    let region = r
                        .get("region_name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned();
                    if r.get("point_in_time_recovery") != Some(&Value::Bool(true)) {
                        v.push(format!(
                            "{at}: replica in {region} without point-in-time recovery"
                        ));
                    }
                    replica_regions.insert(region);
                }
                let want: BTreeSet<String> = regions[1..].iter().map(|r| r.to_string()).collect();
                if replica_regions != want {
                    v.push(format!("{at}: replicas in {replica_regions:?}, want one in every other region {want:?}"));
                }
            }
        }
        for t in declared.difference(&built) {
            v.push(format!(
                "declared table {t} has no aws_dynamodb_table ({regions:?})"
            ));
        }
        for t in built.difference(&declared) {
            v.push(format!("aws_dynamodb_table[{t}] is not a declared table"));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Check: the bus archive.
// ---------------------------------------------------------------------------------------

/// Every event bus of the regional module (the commerce bus) has an archive.
fn check_bus_archive(infra: &Infra) -> Vec<String> {
    let mut v = Vec::new();
    let regional = match infra.regional() {
        Ok(r) => r,
        Err(e) => return vec![format!("regional module: {e}")],
    };
    let mut archived = BTreeSet::new();
    for (_, file, name, block) in infra.resources("aws_cloudwatch_event_archive") {
        let instances = match regional.instances(block) {
            Ok(Some(list)) => list.into_iter().map(|(_, s)| s).collect(),
            Ok(None) => vec![Scope::new()],
            Err(e) => {
                v.push(format!(
                    "aws_cloudwatch_event_archive.{name} (infra/{file}): {e}"
                ));
                continue;
            }
        };
        for scope in instances {
            match attr(&block.body, "event_source_arn").map(|e| regional.eval(e, &scope)) {
                Some(Ok(Value::String(s))) => {
                    archived.insert(s);
                }
                other => v.push(format!(
                    "aws_cloudwatch_event_archive.{name}: event_source_arn {other:?}"
                )),
            }
        }
    }
    let buses = infra.resources("aws_cloudwatch_event_bus");
    if buses.is_empty() && infra.declaration.get("bus").is_some() {
        v.push("the declaration has a bus and there is no aws_cloudwatch_event_bus".into());
    }
    for (_, _, name, block) in buses {
        let arns = match regional.instances(block) {
            Ok(Some(list)) => list
                .into_iter()
                .map(|(k, _)| format!("aws_cloudwatch_event_bus.{name}[{k}].arn"))
                .collect(),
            Ok(None) => vec![format!("aws_cloudwatch_event_bus.{name}.arn")],
            Err(e) => {
                v.push(format!("aws_cloudwatch_event_bus.{name}: {e}"));
                continue;
            }
        };
        for arn in arns {
            if !archived.contains(&arn) {
                v.push(format!("bus {arn} has no aws_cloudwatch_event_archive"));
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Check: what the bus cannot deliver.
// ---------------------------------------------------------------------------------------

/// Every declared rule has a target, and every rule target retries within the declared
/// bounds (`bus.target_retry`) and then dead-letters to the declared queue
/// (`bus.dead_letter_queue`), which has a queue policy (EventBridge needs one to write to it).
fn check_bus_targets(infra: &Infra) -> Vec<String> {
    let mut v = Vec::new();
    let regional = match infra.regional() {
        Ok(r) => r,
        Err(e) => return vec![format!("regional module: {e}")],
    };
    let bus = &infra.declaration["bus"];
    let dlq = bus["dead_letter_queue"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let retry = &bus["target_retry"];
    let mut targeted = BTreeSet::new();
    for (_, file, name, block) in infra.resources("aws_cloudwatch_event_target") {
        let instances = match regional.instances(block) {
            Ok(Some(list)) => list,
            Ok(None) => vec![(String::new(), Scope::new())],
            Err(e) => {
                v.push(format!(
                    "aws_cloudwatch_event_target.{name} (infra/{file}): {e}"
                ));
                continue;
            }
        };
        for (key, scope) in instances {
            let at = format!("aws_cloudwatch_event_target.{name}[{key}]");
            let body = match regional.body(&block.body, &scope) {
                Ok(b) => b,
                Err(e) => {
                    v.push(format!("{at}: {e}"));
                    continue;
                }
            };
            if let Some(rule) = body.get("rule").and_then(Value::as_str) {
                targeted.insert(rule.to_owned());
            }
            let first = |k: &str| body.get(k).and_then(|b| b.get(0)).cloned();
            let dead_letter = first("dead_letter_config")
                .and_then(|d| d.get("arn").and_then(Value::as_str).map(classify));
            if dead_letter != Some(Reach::Queue(dlq.clone())) {
                v.push(format!(
                    "{at}: no dead_letter_config to the bus's dead-letter queue {dlq} ({dead_letter:?}): an event it cannot deliver is dropped"
                ));
            }
            let policy = first("retry_policy").unwrap_or(Value::Null);
            for (tf, declared) in [
                ("maximum_event_age_in_seconds", "maximum_event_age_s"),
                ("maximum_retry_attempts", "maximum_retry_attempts"),
            ] {
                let got = policy.get(tf).and_then(Value::as_f64);
                let want = retry[declared].as_f64();
                if got.is_none() || got != want {
                    v.push(format!(
                        "{at}: retry_policy {tf} {got:?}, the declaration says {want:?}"
                    ));
                }
            }
        }
    }
    for rule in infra.declaration["rules"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(r, _)| r)
    {
        let symbol = format!("aws_cloudwatch_event_rule.this[{rule}].name");
        if !targeted.contains(&symbol) {
            v.push(format!(
                "rule {rule} has no aws_cloudwatch_event_target ({symbol})"
            ));
        }
    }
    // The queue's policy lets EventBridge send from every rule (aws:SourceArn), no more.
    let rules: BTreeSet<String> = infra.declaration["rules"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(r, _)| format!("aws_cloudwatch_event_rule.this[{r}].arn"))
        .collect();
    let mut allowed = None;
    for (_, _, name, block) in infra.resources("aws_sqs_queue_policy") {
        let scope = Scope::new();
        let eval = |k: &str| attr(&block.body, k).map(|e| regional.eval(e, &scope));
        if !matches!(regional.instances(block), Ok(None))
            || !matches!(eval("queue_url"), Some(Ok(Value::String(ref u))) if *u == format!("aws_sqs_queue.this[{dlq}].id"))
        {
            continue;
        }
        let document = match eval("policy") {
            Some(Ok(Value::String(p))) => p
                .strip_prefix("data.aws_iam_policy_document.")
                .and_then(|p| p.strip_suffix(".json"))
                .and_then(|d| regional.module.find("data", "aws_iam_policy_document", d))
                .map(|d| regional.body(&d.body, &scope)),
            _ => None,
        };
        let Some(Ok(document)) = document else {
            v.push(format!(
                "aws_sqs_queue_policy.{name}: its policy is not an aws_iam_policy_document of the module"
            ));
            continue;
        };
        let mut sources = BTreeSet::new();
        for st in document
            .get("statement")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let events = st["principals"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| strings(Some(&p["identifiers"])).contains("events.amazonaws.com"));
            if !events || !strings(Some(&st["actions"])).contains("sqs:SendMessage") {
                continue;
            }
            for c in st["condition"].as_array().into_iter().flatten() {
                if c["variable"] == "aws:SourceArn" {
                    sources.extend(strings(Some(&c["values"])));
                }
            }
        }
        allowed = Some(sources);
    }
    match allowed {
        None => v.push(format!(
            "the bus's dead-letter queue {dlq} has no aws_sqs_queue_policy: EventBridge cannot write to it"
        )),
        Some(sources) if sources != rules => v.push(format!(
            "the bus's dead-letter queue {dlq} lets EventBridge send from {sources:?}, the rules are {rules:?}"
        )),
        Some(_) => {}
    }
    v
}

// ---------------------------------------------------------------------------------------
// Check: state machines.
// ---------------------------------------------------------------------------------------

/// Every function a state machine declares exists; its definition is rendered by
/// templatefile with exactly the ARNs of those functions and its declared parameters;
/// every placeholder in the template is one of them; the rendered definition is a state
/// machine.
fn check_state_machines(infra: &Infra) -> Vec<String> {
    let mut v = Vec::new();
    let machines = infra
        .declaration
        .get("state_machines")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (m, spec) in &machines {
        for f in strings(spec.get("functions")) {
            if !infra.functions().contains_key(&f) {
                v.push(format!(
                    "state machine {m} declares function {f}, which is not declared"
                ));
            }
        }
    }
    let regional = match infra.regional() {
        Ok(r) => r,
        Err(e) => {
            v.push(format!("regional module: {e}"));
            return v;
        }
    };
    let template_vars: BTreeSet<String> = regional
        .vars
        .get("state_machine_template_vars")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let resources = infra.resources("aws_sfn_state_machine");
    if resources.is_empty() && !machines.is_empty() {
        v.push("state machines are declared and there is no aws_sfn_state_machine".into());
    }
    let mut built = BTreeSet::new();
    for (_, file, name, block) in resources {
        let instances = match regional.instances(block) {
            Ok(Some(list)) => list,
            other => {
                v.push(format!("aws_sfn_state_machine.{name} (infra/{file}) is not one per declared state machine: {other:?}"));
                continue;
            }
        };
        for (m, scope) in instances {
            let at = format!("aws_sfn_state_machine.{name}[{m}]");
            built.insert(m.clone());
            let Some(spec) = machines.get(&m) else {
                v.push(format!("{at} is not a declared state machine"));
                continue;
            };
            let call = match attr(&block.body, "definition") {
                Some(Expression::FuncCall(c))
                    if c.name.name.as_str() == "templatefile" && c.args.len() == 2 =>
                {
                    c
                }
                _ => {
                    v.push(format!("{at}: definition is not templatefile(path, vars)"));
                    continue;
                }
            };
            let (path, vars) = match (
                regional.eval(&call.args[0], &scope),
                regional.eval(&call.args[1], &scope),
            ) {
                (Ok(Value::String(p)), Ok(Value::Object(vars))) => (p, vars),
                (p, vars) => {
                    v.push(format!("{at}: templatefile arguments: {p:?}, {vars:?}"));
                    continue;
                }
            };
            let declared_functions = strings(spec.get("functions"));
            let parameters: BTreeSet<String> = spec
                .get("parameters")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            let mut passed_functions = BTreeSet::new();
            for (key, value) in &vars {
                match (key.strip_suffix("_arn"), classify(value.as_str().unwrap_or(""))) {
                    (Some(stem), Reach::Function(f)) => {
                        if stem != f.replace('-', "_") {
                            v.push(format!("{at}: template variable {key} is the ARN of {f}"));
                        }
                        if !declared_functions.contains(&f) {
                            v.push(format!("{at}: templatefile passes the ARN of {f}, which {m} does not declare"));
                        }
                        passed_functions.insert(f);
                    }
                    _ if parameters.contains(key) || template_vars.contains(key) => {}
                    _ => v.push(format!("{at}: template variable {key} = {value} is neither a declared function's ARN nor a declared parameter")),
                }
            }
            for f in declared_functions.difference(&passed_functions) {
                v.push(format!(
                    "{at}: declared function {f} is not passed to the template"
                ));
            }
            let text = match regional.file(&path) {
                Ok(t) => t,
                Err(e) => {
                    v.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let placeholders = match Template::from_str(&text) {
                Ok(t) => {
                    let mut names = BTreeSet::new();
                    template_names(t.elements(), &mut names);
                    names
                }
                Err(e) => {
                    v.push(format!("{at}: {path} is not a template: {e}"));
                    continue;
                }
            };
            let mut used_functions = BTreeSet::new();
            for p in &placeholders {
                let function = p.strip_suffix("_arn").map(|s| s.replace('_', "-"));
                match function {
                    Some(f) if declared_functions.contains(&f) && vars.contains_key(p) => {
                        used_functions.insert(f);
                    }
                    _ if parameters.contains(p) && vars.contains_key(p) => {}
                    _ => v.push(format!("{at}: placeholder ${{{p}}} in {path} is neither a declared function's ARN nor a declared parameter")),
                }
            }
            for f in declared_functions.difference(&used_functions) {
                v.push(format!(
                    "{at}: declared function {f} is not invoked by {path}"
                ));
            }
            match attr(&block.body, "definition").map(|d| regional.eval(d, &scope)) {
                Some(Ok(Value::String(rendered))) => match serde_json::from_str::<Value>(&rendered)
                {
                    Ok(json) if json["States"].is_object() && json["StartAt"].is_string() => {}
                    Ok(_) => v.push(format!("{at}: the rendered {path} is not a state machine")),
                    Err(e) => v.push(format!("{at}: the rendered {path} is not JSON: {e}")),
                },
                other => v.push(format!("{at}: definition does not render: {other:?}")),
            }
        }
    }
    for m in machines.keys() {
        if !built.contains(m) {
            v.push(format!(
                "declared state machine {m} has no aws_sfn_state_machine"
            ));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// All of it.
// ---------------------------------------------------------------------------------------

fn violations_with(sources: &Sources, binaries: &BTreeSet<String>) -> Vec<String> {
    let infra = match Infra::parse(sources) {
        Ok(i) => i,
        Err(e) => return vec![e],
    };
    let mut v = check_lambdas(&infra, binaries);
    v.extend(check_architecture(&infra));
    v.extend(check_route_authorization(&infra));
    v.extend(check_function_policies(&infra));
    v.extend(check_mappings(&infra));
    v.extend(check_tables(&infra));
    v.extend(check_bus_archive(&infra));
    v.extend(check_bus_targets(&infra));
    v.extend(check_state_machines(&infra));
    v
}

/// The violations of the real function binaries and the sources after `edit`.
fn violations(sources: &Sources) -> Vec<String> {
    violations_with(sources, &function_binaries())
}

/// Some violation mentions every needle (the mutation was caught, and for the right reason).
#[track_caller]
fn assert_reported(violations: &[String], needles: &[&str]) {
    assert!(
        violations
            .iter()
            .any(|v| needles.iter().all(|n| v.contains(n))),
        "no violation mentions {needles:?}; got:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_terraform_holds_the_declaration() {
    let v = violations(&Sources::load());
    assert!(
        v.is_empty(),
        "infra/ violates the declaration:\n{}",
        v.join("\n")
    );
}

/// The statements of `data "aws_iam_policy_document" "<name>"` in the regional module, one
/// document per instance (its `for_each` key).
fn policy_documents(infra: &Infra, name: &str) -> Result<Policies, String> {
    let Instanced {
        regional,
        block,
        instances,
    } = regional_instances(infra, "data", "aws_iam_policy_document", name)?;
    let mut documents = BTreeMap::new();
    for (key, scope) in &instances {
        let body = regional
            .body(&block.body, scope)
            .map_err(|e| format!("data.aws_iam_policy_document.{name}[{key}]: {e}"))?;
        let statements = body
            .get("statement")
            .and_then(Value::as_array)
            .map(|s| s.iter().map(Statement::from_block).collect())
            .unwrap_or_default();
        documents.insert(key.clone(), statements);
    }
    Ok(documents)
}

/// Every role's policy that the declaration generates (each function's, each state
/// machine's), as Terraform would attach it, written to
/// `target/iam-policies/<role kind>-<name>.json` for the IAM linter (`infra/lint_iam.py`,
/// which `make test-infra` runs right after this test).
#[test]
fn the_generated_role_policies_are_written_for_the_iam_linter() {
    let infra = Infra::parse(&Sources::load()).unwrap();
    // A relative CARGO_TARGET_DIR is relative to where make runs, the repository's root.
    let target = root().join(
        std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "target".into()),
    );
    let dir = target.join("iam-policies");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut written = 0;
    for (kind, expected) in [
        ("function", infra.functions().len()),
        (
            "state_machine",
            infra.declaration["state_machines"]
                .as_object()
                .unwrap()
                .len(),
        ),
    ] {
        let documents = policy_documents(&infra, kind).unwrap();
        assert_eq!(documents.len(), expected, "{kind} policies");
        for (name, statements) in &documents {
            let doc = json!({
                "Version": "2012-10-17",
                "Statement": statements.iter().map(Statement::to_iam_json).collect::<Vec<_>>(),
            });
            let file = dir.join(format!("{}-{name}.json", kind.replace('_', "-")));
            std::fs::write(file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
            written += 1;
        }
    }
    assert!(written > infra.functions().len());
}

/// The policies were evaluated, not skipped: each function has its own logs statement,
/// and the ones the saga and the relay depend on reach what they must.
#[test]
fn the_policies_are_evaluated_per_function() {
    let infra = Infra::parse(&Sources::load()).unwrap();
    let (policies, _) = function_policies(&infra).unwrap();
    let declared: BTreeSet<&String> = infra.functions().keys().collect();
    assert_eq!(policies.keys().collect::<BTreeSet<_>>(), declared);
    let reaches = |f: &str| -> BTreeSet<(String, Reach)> {
        policies[f]
            .iter()
            .flat_map(|s| {
                s.actions
                    .iter()
                    .flat_map(move |a| s.resources.iter().map(move |r| (a.clone(), classify(r))))
            })
            .collect()
    };
    for f in infra.functions().keys() {
        assert!(
            reaches(f).contains(&("logs:PutLogEvents".into(), Reach::LogGroup(f.clone()))),
            "{f} cannot write its own logs"
        );
    }
    let saga = reaches("orders-start-saga");
    assert!(saga.contains(&(
        "states:StartExecution".into(),
        Reach::StateMachine("place-order".into())
    )));
    assert!(saga.contains(&(
        "sqs:ReceiveMessage".into(),
        Reach::Queue("order-placed".into())
    )));
    let relay = reaches("outbox-relay");
    assert!(relay.contains(&("events:PutEvents".into(), Reach::Bus("commerce".into()))));
    for t in ["inventory", "orders", "payments", "fraud"] {
        assert!(relay.contains(&("dynamodb:GetRecords".into(), Reach::TableStream(t.into()))));
    }
    let scorer = reaches("fraud-score");
    assert!(scorer.contains(&(
        "kinesis:GetRecords".into(),
        Reach::Kinesis("transactions".into())
    )));
    assert!(scorer.contains(&(
        "sqs:SendMessage".into(),
        Reach::Queue("fraud-score-failures".into())
    )));
    assert!(
        reaches("orders-list")
            .contains(&("dynamodb:Query".into(), Reach::TableIndex("orders".into())))
    );
    let users_get = reaches("users-get");
    assert!(users_get.contains(&("dynamodb:GetItem".into(), Reach::Table("users".into()))));
    assert!(
        !users_get
            .iter()
            .any(|(_, r)| matches!(r, Reach::KmsKey(k) if k == "regional"))
    );
}

// ---------------------------------------------------------------------------------------
// Negative tests: each mutation of the real files must be reported.
// ---------------------------------------------------------------------------------------

const FUNCTIONS_TF: &str = "modules/regional/functions.tf";
const MAPPINGS_TF: &str = "modules/regional/mappings.tf";
const TABLES_TF: &str = "modules/global/tables.tf";
const EVENTS_TF: &str = "modules/regional/events.tf";
const STATE_MACHINES_TF: &str = "modules/regional/state_machines.tf";
const OWN_LOGS: &str = "  statement {\n    sid       = \"OwnLogs\"";

/// A statement added before the first one of every function's policy.
fn with_statement(statement: &str) -> Sources {
    Sources::load().edit(
        FUNCTIONS_TF,
        OWN_LOGS,
        &format!("{statement}\n\n{OWN_LOGS}"),
    )
}

#[test]
fn a_statement_on_any_resource_is_reported() {
    let v = violations(&with_statement(
        "  statement {\n    sid = \"Everything\"\n    actions = [\"dynamodb:GetItem\"]\n    resources = [\"*\"]\n  }",
    ));
    assert_reported(&v, &["users-get", "Everything", "resource *"]);
}

#[test]
fn a_route_opened_without_the_declaration_is_reported() {
    let v = violations(&Sources::load().edit(
        "modules/regional/api.tf",
        "authorization_type = try(each.value.auth, \"jwt\") == \"none\" ? \"NONE\" : \"JWT\"",
        "authorization_type = \"NONE\"",
    ));
    assert_reported(&v, &["route of orders-create (auth jwt)"]);
}

#[test]
fn an_architecture_other_than_the_declared_one_is_reported() {
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "architectures    = [var.declaration.lambda.architecture]",
        "architectures    = [\"x86_64\"]",
    ));
    assert_reported(&v, &["architectures", "not the declaration's"]);
}

#[test]
fn a_handler_that_names_no_function_is_reported() {
    // The one binary starts the function `_HANDLER` names; "bootstrap" names none.
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "handler          = each.key",
        "handler          = \"bootstrap\"",
    ));
    assert_reported(&v, &["aws_lambda_function.this[users-get].handler"]);
}

#[test]
fn a_function_deployed_from_its_own_zip_is_reported() {
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "filename         = \"${var.lambda_artifacts_dir}/${var.declaration.lambda.package}/bootstrap.zip\"",
        "filename         = \"${var.lambda_artifacts_dir}/${each.key}/bootstrap.zip\"",
    ));
    assert_reported(
        &v,
        &[
            "aws_lambda_function.this[users-get].filename",
            "not the one zip",
        ],
    );
}

#[test]
fn lambdas_that_accept_zips_of_any_architecture_are_reported() {
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "try(trimspace(file(\"${var.lambda_artifacts_dir}/architecture\")), \"none\") == var.declaration.lambda.architecture",
        "true",
    ));
    assert_reported(&v, &["does not refuse zips built for another architecture"]);
}

#[test]
fn a_task_token_answer_on_state_machine_arns_is_reported() {
    // The policy this module generated before: the fraud scorer's answers denied in AWS.
    let v = violations(&with_statement(
        "  statement {\n    sid = \"Answers\"\n    actions = [\"states:SendTaskSuccess\"]\n    resources = [\"arn:aws:states:${var.region}:${local.account_id}:stateMachine:${var.name_prefix}-place-order\"]\n  }",
    ));
    assert_reported(
        &v,
        &[
            "fraud-score",
            "Answers",
            "states:SendTaskSuccess",
            "no resource type",
        ],
    );
}

#[test]
fn a_task_token_answer_the_function_is_not_given_is_reported() {
    let v = violations(&with_statement(
        "  statement {\n    sid = \"Answers\"\n    actions = [\"states:SendTaskFailure\"]\n    resources = [\"*\"]\n  }",
    ));
    assert_reported(
        &v,
        &["users-get", "Answers", "states:SendTaskFailure (on *)"],
    );
}

#[test]
fn a_wildcard_action_is_reported() {
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "actions   = [\"sqs:SendMessage\"]",
        "actions   = [\"sqs:*\"]",
    ));
    assert_reported(&v, &["fraud-score", "wildcard action sqs:*"]);
}

#[test]
fn a_queue_the_function_does_not_consume_is_reported() {
    let v = violations(&with_statement(
        "  statement {\n    sid = \"Stray\"\n    actions = [\"sqs:ReceiveMessage\"]\n    resources = [aws_sqs_queue.this[\"order-placed\"].arn]\n  }",
    ));
    assert_reported(&v, &["users-get", "queue order-placed", "does not give"]);
    // The one function that does consume it is not reported for it.
    assert!(
        !v.iter()
            .any(|x| x.starts_with("orders-start-saga") && x.contains("Stray")),
        "{v:?}"
    );
}

#[test]
fn another_functions_table_is_reported() {
    let v = violations(&with_statement(
        "  statement {\n    sid = \"Peek\"\n    actions = [\"dynamodb:GetItem\"]\n    resources = [var.tables[\"users\"].arn]\n  }",
    ));
    assert_reported(&v, &["orders-get", "table users", "does not give"]);
}

#[test]
fn undeclared_dynamodb_actions_are_reported() {
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "actions = statement.value\n      # Query and Scan",
        "actions = concat(statement.value, [\"dynamodb:DeleteItem\"])\n      # Query and Scan",
    ));
    assert_reported(&v, &["users-get", "DynamoDB actions on table users"]);
}

#[test]
fn an_unknown_resource_is_reported() {
    let v = violations(&with_statement(
        "  statement {\n    sid = \"Bucket\"\n    actions = [\"s3:GetObject\"]\n    resources = [\"arn:aws:s3:::somewhere/*\"]\n  }",
    ));
    assert_reported(
        &v,
        &[
            "Bucket",
            "arn:aws:s3:::somewhere/*",
            "not one this test can attribute",
        ],
    );
}

#[test]
fn a_kms_key_usable_outside_its_service_is_reported() {
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "        variable = \"kms:ViaService\"\n        values   = [\"dynamodb",
        "        variable = \"kms:CallerAccount\"\n        values   = [\"dynamodb",
    ));
    assert_reported(&v, &["users-get", "KMS key tables", "kms:ViaService"]);
}

#[test]
fn a_policy_not_attached_to_the_role_is_reported() {
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "policy = data.aws_iam_policy_document.function[each.key].json",
        "policy = data.aws_iam_policy_document.assume_lambda.json",
    ));
    assert_reported(&v, &["aws_iam_role_policy.function[users-get].policy"]);
}

#[test]
fn a_mapping_without_batch_item_failures_is_reported() {
    let v = violations(&Sources::load().edit(
        MAPPINGS_TF,
        "  function_response_types            = [\"ReportBatchItemFailures\"]\n",
        "",
    ));
    assert_reported(
        &v,
        &[
            "orders-start-saga",
            "Queue(\"order-placed\")",
            "ReportBatchItemFailures",
        ],
    );
    assert_reported(
        &v,
        &[
            "fraud-score",
            "Kinesis(\"transactions\")",
            "ReportBatchItemFailures",
        ],
    );
}

#[test]
fn a_stream_mapping_without_bisect_bounds_or_failure_queue_is_reported() {
    let sources = Sources::load()
        .edit(MAPPINGS_TF, "bisect_batch_on_function_error = try(each.value.bisect_on_error, null)", "bisect_batch_on_function_error = null")
        .edit(MAPPINGS_TF, "maximum_retry_attempts         = try(each.value.maximum_retry_attempts, null)", "maximum_retry_attempts         = -1")
        .edit(
            MAPPINGS_TF,
            "for_each = try(each.value.on_failure_queue, null) == null ? [] : [each.value.on_failure_queue]",
            "for_each = []",
        );
    let v = violations(&sources);
    for what in [
        "bisect_batch_on_function_error",
        "maximum_retry_attempts -1",
        "no destination_config",
    ] {
        assert_reported(&v, &["fraud-score", "Kinesis(\"transactions\")", what]);
        assert_reported(&v, &["outbox-relay", "TableStream(\"orders\")", what]);
    }
}

#[test]
fn a_declared_event_source_without_mapping_is_reported() {
    let v = violations(&Sources::load().edit(
        MAPPINGS_TF,
        "\"${fn}#${i}\" => merge(source, { function = fn })",
        "\"${fn}#${i}\" => merge(source, { function = fn }) if fn != \"fraud-score\"",
    ));
    assert_reported(
        &v,
        &[
            "fraud-score",
            "kinesis:transactions",
            "has no event-source mapping",
        ],
    );
}

#[test]
fn a_table_without_point_in_time_recovery_is_reported() {
    let v = violations(&Sources::load().edit(
        TABLES_TF,
        "  point_in_time_recovery {\n    enabled                 = true\n    recovery_period_in_days = var.pitr_recovery_period_days\n  }\n",
        "",
    ));
    assert_reported(
        &v,
        &["aws_dynamodb_table.this[orders]", "point_in_time_recovery"],
    );
}

#[test]
fn a_replica_without_point_in_time_recovery_is_reported() {
    let v = violations(&Sources::load().edit(
        TABLES_TF,
        "point_in_time_recovery      = true",
        "point_in_time_recovery      = false",
    ));
    assert_reported(
        &v,
        &[
            "aws_dynamodb_table.this[users]",
            "replica in eu-central-1 without point-in-time recovery",
        ],
    );
}

#[test]
fn a_region_without_replicas_is_reported() {
    let v = violations(&Sources::load().edit(
        TABLES_TF,
        "if region != var.regions.primary }",
        "if region != var.regions.primary && region != var.regions.third }",
    ));
    assert_reported(&v, &["aws_dynamodb_table.this[users]", "us-east-1"]);
}

#[test]
fn a_bus_without_archive_is_reported() {
    let removed = Sources::load().edit(
        EVENTS_TF,
        "resource \"aws_cloudwatch_event_archive\" \"commerce\" {",
        "resource \"aws_cloudwatch_event_connection\" \"commerce\" {",
    );
    assert_reported(
        &violations(&removed),
        &[
            "aws_cloudwatch_event_bus.commerce.arn",
            "no aws_cloudwatch_event_archive",
        ],
    );
    let elsewhere = Sources::load().edit(
        EVENTS_TF,
        "event_source_arn = aws_cloudwatch_event_bus.commerce.arn",
        "event_source_arn = \"arn:aws:events:eu-west-1:123456789012:event-bus/default\"",
    );
    assert_reported(
        &violations(&elsewhere),
        &[
            "aws_cloudwatch_event_bus.commerce.arn",
            "no aws_cloudwatch_event_archive",
        ],
    );
}

#[test]
fn a_rule_target_without_dead_letter_queue_or_retry_bounds_is_reported() {
    let no_dlq = Sources::load().edit(
        EVENTS_TF,
        "arn = aws_sqs_queue.this[local.bus_dlq].arn",
        "arn = aws_sqs_queue.this[\"notifications\"].arn",
    );
    assert_reported(
        &violations(&no_dlq),
        &[
            "aws_cloudwatch_event_target.this[notifications]",
            "no dead_letter_config",
        ],
    );
    let unbounded = Sources::load().edit(
        EVENTS_TF,
        "maximum_retry_attempts       = var.declaration.bus.target_retry.maximum_retry_attempts",
        "maximum_retry_attempts       = 3",
    );
    assert_reported(
        &violations(&unbounded),
        &[
            "aws_cloudwatch_event_target.this[order-placed]",
            "maximum_retry_attempts",
        ],
    );
    let unpoliced = Sources::load().edit(
        EVENTS_TF,
        "queue_url = aws_sqs_queue.this[local.bus_dlq].id",
        "queue_url = aws_sqs_queue.this[\"order-placed\"].id",
    );
    assert_reported(
        &violations(&unpoliced),
        &["bus-dlq", "no aws_sqs_queue_policy"],
    );
    let one_rule_only = Sources::load().edit(
        EVENTS_TF,
        ": aws_cloudwatch_event_rule.this[name].arn]\n",
        ": aws_cloudwatch_event_rule.this[name].arn if name == \"notifications\"]\n",
    );
    assert_reported(
        &violations(&one_rule_only),
        &["bus-dlq", "lets EventBridge send from", "order-placed"],
    );
}

#[test]
fn an_undeclared_function_in_a_state_machine_template_is_reported() {
    let v = violations(&Sources::load().edit(
        "state-machines/cancel-order.asl.json",
        "\"${payments_refund_arn}\"",
        "\"${payments_chargeback_arn}\"",
    ));
    assert_reported(
        &v,
        &["cancel-order", "${payments_chargeback_arn}", "neither"],
    );
}

#[test]
fn an_undeclared_function_passed_to_a_template_is_reported() {
    let v = violations(&Sources::load().edit(
        STATE_MACHINES_TF,
        "for fn in try(each.value.functions, []) :",
        "for fn in concat(try(each.value.functions, []), [\"users-get\"]) :",
    ));
    assert_reported(&v, &["place-order", "ARN of users-get", "does not declare"]);
}

#[test]
fn a_state_machine_declaring_a_missing_function_is_reported() {
    let v = violations(&Sources::load().edit(
        "declaration.json",
        "\"inventory-restock\",\n        \"orders-finish-cancel\"\n",
        "\"inventory-restock\",\n        \"orders-finish-cancel\",\n        \"orders-notify\"\n",
    ));
    assert_reported(&v, &["cancel-order", "orders-notify", "not declared"]);
}

#[test]
fn another_lambda_is_reported() {
    let v = violations(&Sources::load().append(
        "modules/regional/api.tf",
        "\nresource \"aws_lambda_function\" \"extra\" {\n  function_name = \"extra\"\n}\n",
    ));
    assert_reported(
        &v,
        &[
            "exactly one aws_lambda_function",
            "aws_lambda_function.extra",
        ],
    );
}

#[test]
fn a_declared_function_without_lambda_is_reported() {
    let v = violations(&Sources::load().edit(
        FUNCTIONS_TF,
        "resource \"aws_lambda_function\" \"this\" {\n  for_each = local.functions",
        "resource \"aws_lambda_function\" \"this\" {\n  for_each = { for k, f in local.functions : k => f if k != \"users-get\" }",
    ));
    assert_reported(
        &v,
        &["declared function users-get has no aws_lambda_function"],
    );
    assert_reported(&v, &["binary users-get has no Lambda"]);
}

#[test]
fn a_binary_without_lambda_is_reported() {
    let mut binaries = function_binaries();
    binaries.insert("users-export".into());
    binaries.remove("users-get");
    let v = violations_with(&Sources::load(), &binaries);
    assert_reported(&v, &["binary users-export has no Lambda"]);
    assert_reported(&v, &["aws_lambda_function.this[users-get] has no binary"]);
}

#[test]
fn a_regional_stack_not_given_the_declaration_file_is_reported() {
    let v = violations(&Sources::load().edit(
        "main.tf",
        "    declaration                  = local.declaration\n",
        "    declaration                  = merge(local.declaration, { functions = {} })\n",
    ));
    assert_reported(
        &v,
        &[
            "module \"secondary\"",
            "something other than infra/declaration.json",
        ],
    );
    assert_reported(
        &v,
        &["declared function users-get has no aws_lambda_function"],
    );
}

/// The reason this file has its own evaluator (see the top): hcl-rs evaluates a function's
/// arguments before calling it, so Terraform's `try` cannot be declared with it. When this
/// fails, hcl-rs evaluates `try` lazily and the evaluator above can be replaced by it.
#[test]
fn hcl_rs_eval_cannot_evaluate_the_modules_try_idiom() {
    use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
    fn first(args: FuncArgs) -> Result<hcl::Value, String> {
        args.iter()
            .next()
            .cloned()
            .ok_or_else(|| "try: no arguments".to_owned())
    }
    let mut ctx = Context::new();
    ctx.declare_var("var", hcl::value!({ declaration = {} }));
    ctx.declare_func(
        "try",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(first),
    );
    let idiom = Expression::from_str("try(var.declaration.state_machines, {})").unwrap();
    let present = Expression::from_str("try(var.declaration, {})").unwrap();
    assert!(
        present.evaluate(&ctx).is_ok(),
        "the context is set up: try over a present key evaluates"
    );
    assert!(
        idiom.evaluate(&ctx).is_err(),
        "hcl-rs now evaluates try over a missing key: replace the hand-written evaluator"
    );
}
