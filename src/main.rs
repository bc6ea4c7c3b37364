fn main() {
    println!("ddcc-mediator: work in progress");
}
