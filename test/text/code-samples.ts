// One small file per language for the code chunker's tests: its top-level units in order, and members that show up
// as Class.member once a budget of `small` tokens opens the container.
export interface CodeSample {
	source: string;
	top: string[];
	members: string[];
	small: number;
}

const lines = (...l: string[]) => l.join("\n") + "\n";

export const SAMPLES: Record<string, CodeSample> = {
	typescript: {
		source: lines(
			'import { readFile } from "node:fs/promises";',
			"",
			"// Greets people by name.",
			"export class Greeter {",
			"\tconstructor(private readonly greeting: string) {}",
			"",
			"\t/** Says hello to someone in particular. */",
			"\tgreet(name: string): string {",
			"\t\treturn `${this.greeting}, ${name}! Nice to see you again today.`;",
			"\t}",
			"",
			"\tasync load(path: string): Promise<string> {",
			'\t\treturn (await readFile(path, "utf8")).trim().toUpperCase();',
			"\t}",
			"}",
			"",
			"export const add = (a: number, b: number): number => a + b;"
		),
		top: ["Greeter", "add"],
		members: ["Greeter.greet", "Greeter.load"],
		small: 40
	},
	javascript: {
		source: lines(
			"function square(x) {",
			"\treturn x * x;",
			"}",
			"",
			"class Shape {",
			"\tarea() {",
			"\t\treturn square(this.side) + this.offset * 2 - this.margin;",
			"\t}",
			"\tperimeter() {",
			"\t\treturn 4 * this.side + this.offset + this.margin * 3;",
			"\t}",
			"}"
		),
		top: ["square", "Shape"],
		members: ["Shape.area", "Shape.perimeter"],
		small: 30
	},
	python: {
		source: lines(
			"import os",
			"",
			"",
			"def read_config(path):",
			'    """Reads the config file; returns {} when missing."""',
			"    if not os.path.exists(path):",
			"        return {}",
			"    with open(path) as f:",
			"        return parse(f.read())",
			"",
			"",
			"class Store:",
			"    @property",
			"    def size(self):",
			"        return len(self.items) + len(self.pending) + self.extra_count",
			"",
			"    def add(self, item):",
			"        self.items.append(item)",
			"        self.pending.remove(item)"
		),
		top: ["read_config", "Store"],
		members: ["Store.size", "Store.add"],
		small: 30
	},
	go: {
		source: lines(
			"package main",
			"",
			'import "fmt"',
			"",
			"// Add adds two numbers.",
			"func Add(a, b int) int {",
			"\treturn a + b",
			"}",
			"",
			"type Server struct {",
			"\tName string",
			"}",
			"",
			"func (s *Server) Handle(w Writer) {",
			'\tfmt.Fprintf(w, "{ %s }", s.Name)',
			"}"
		),
		// "package main" and the import name nothing: only declarations do.
		top: ["Add", "Server", "Handle"],
		members: ["Add", "Handle"],
		small: 24
	},
	java: {
		source: lines(
			"package shop;",
			"",
			"public class Cart {",
			"    private final List<Item> items = new ArrayList<>();",
			"",
			"    @Override",
			"    public String toString() {",
			'        return "Cart(" + items.size() + " items, total " + total() + ")";',
			"    }",
			"",
			"    public long total()",
			"    {",
			"        return items.stream().mapToLong(Item::price).sum();",
			"    }",
			"}"
		),
		top: ["Cart"],
		members: ["Cart.toString", "Cart.total"],
		small: 30
	},
	csharp: {
		source: lines(
			"using System;",
			"",
			"namespace Shop",
			"{",
			"    public class Order",
			"    {",
			"        [Obsolete]",
			"        public decimal Total() { return Lines.Sum(l => l.Price * l.Quantity) + Shipping; }",
			"",
			"        public void Cancel()",
			"        {",
			'            Status = OrderStatus.Cancelled; Notify(Customer, "cancelled");',
			"        }",
			"    }",
			"}"
		),
		top: ["Shop"],
		members: ["Shop.Order", "Shop.Order.Total", "Shop.Order.Cancel"],
		small: 30
	},
	rust: {
		source: lines(
			"use std::fmt;",
			"",
			"#[derive(Debug)]",
			"pub struct Point { x: i32, y: i32 }",
			"",
			"impl<'a> fmt::Display for Point {",
			"    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {",
			'        write!(f, "({}, {})", self.x, self.y)',
			"    }",
			"",
			"    fn norm(&self) -> i32 {",
			"        let c = '{';",
			"        self.x.abs() + self.y.abs() + c as i32",
			"    }",
			"}"
		),
		top: ["Point"],
		members: ["Point.fmt", "Point.norm"],
		small: 36
	},
	c: {
		source: lines(
			"#include <stdio.h>",
			"",
			"static int square(int x)",
			"{",
			"    return x * x;",
			"}",
			"",
			"int main(int argc, char **argv) {",
			'    printf("%d { }\\n", square(argc));',
			"    return 0;",
			"}"
		),
		top: ["square", "main"],
		members: ["square", "main"],
		small: 20
	},
	cpp: {
		source: lines(
			"#include <string>",
			"",
			"namespace geo {",
			"class Circle {",
			"public:",
			"    double area() const { return 3.14159 * radius * radius + border * 2.0; }",
			'    std::string name() const { return std::string("circle of radius ") + label; }',
			"};",
			"}"
		),
		top: ["geo"],
		members: ["geo.Circle"],
		small: 40
	},
	ruby: {
		source: lines(
			"require 'json'",
			"",
			"class Account",
			"  def initialize(owner)",
			"    @owner = owner",
			"    @balance = 0",
			"  end",
			"",
			"  def deposit(amount)",
			"    raise ArgumentError, 'negative' if amount.negative?",
			"    @balance += amount",
			"  end",
			"end"
		),
		top: ["Account"],
		members: ["Account.initialize", "Account.deposit"],
		small: 24
	},
	php: {
		source: lines(
			"<?php",
			"",
			"namespace App;",
			"",
			"# Users of the application.",
			"class UserRepository",
			"{",
			"    public function find(int $id): ?User",
			"    {",
			'        return $this->db->query("SELECT * FROM users WHERE id = ?", [$id])->first();',
			"    }",
			"",
			"    private function cache(): array { return $this->cache ?? []; }",
			"}",
			"",
			"function helper($x) { return $x; }"
		),
		top: ["App", "UserRepository", "helper"],
		members: ["UserRepository.find", "UserRepository.cache"],
		small: 36
	}
};
